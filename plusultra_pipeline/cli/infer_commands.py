"""``plusultra infer`` and ``plusultra lineage``: daily inference and provenance without the UI.

``infer`` restores a supervised checkpoint (`MarketNNPlusUltraAgent`), predicts every symbol for
the decision day(s) from the SQLite database, prints a compact table per day (probabilities,
position, expected return, predicted volatility; the largest positions first) and the portfolio
risk line, and optionally writes the frame to a Parquet/CSV file (``--out``) and/or the database's
``predictions`` table (``--export``, the only write to the user's database). ``lineage`` prints
the chain of a checkpoint or of a stored inference day. A bad checkpoint, date or database is one
error line with exit status 2 naming what exists (the stored inference days); decision days the
checkpoint was trained on get a one-line warning that those predictions are in-sample.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from plusultra_core.errors import CheckpointError, ConfigError
from plusultra_core.lineage import describe_days, train_range

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_OUT_SUFFIXES = (".parquet", ".csv")


def register(subparsers) -> None:
    p = subparsers.add_parser("infer", help="predict positions + risk for a day from a supervised checkpoint")
    p.add_argument("--checkpoint", required=True, help="supervised checkpoint (.pt, with its .json sidecar)")
    p.add_argument("--date", required=True, help="decision day YYYY-MM-DD (first day with --end)")
    p.add_argument("--end", default=None, help="last decision day YYYY-MM-DD (default: --date)")
    p.add_argument("--db", default=None, help="SQLite market database (default: the checkpoint's data.db_path)")
    p.add_argument("--symbols", default=None, help="comma-separated symbols (default: all with bars)")
    p.add_argument("--export", action="store_true", help="also write the rows to the database's predictions table")
    p.add_argument("--out", default=None, help="write the prediction frame to FILE.parquet or FILE.csv")
    p.add_argument("--max-rows", type=int, default=30, help="rows printed per day (default: %(default)s)")
    p.set_defaults(handler=_infer)

    lin = subparsers.add_parser("lineage", help="print the lineage of a checkpoint or an inference day")
    lin.add_argument("target", help="checkpoint path, or a day YYYY-MM-DD of a stored inference frame")
    lin.add_argument("--store", default=None, help="store root (default: the pipeline settings' store_root)")
    lin.set_defaults(handler=_lineage)


def _is_date(value: str) -> bool:
    import datetime as dt

    try:
        return bool(_DATE.match(value)) and bool(dt.date.fromisoformat(value))
    except ValueError:
        return False


def _check_date(value: str, flag: str) -> str:
    if not _is_date(value):
        raise ConfigError(f"{flag} {value!r} is not a date YYYY-MM-DD")
    return value


def _fmt(x: float, spec: str) -> str:
    return "nan" if x != x else format(x, spec)


def _print_day(day, rows, portfolio: dict, max_rows: int) -> None:
    shown = rows.reindex(rows["position"].abs().sort_values(ascending=False, kind="stable").index)
    print(f"{day}  ({len(rows)} symbols)")
    print(f"  {'symbol':<10} {'p_sell':>7} {'p_hold':>7} {'p_buy':>7} {'position':>9} {'exp_ret':>9} {'pred_vol':>9}")
    for r in shown.head(max_rows).itertuples(index=False):  # printing: bounded by --max-rows
        print(f"  {r.symbol:<10} {r.p_sell:7.3f} {r.p_hold:7.3f} {r.p_buy:7.3f} {r.position:9.4f} "
              f"{_fmt(r.expected_return, '9.5f')} {_fmt(r.predicted_volatility, '9.5f')}")
    if len(rows) > max_rows:
        print(f"  ... {len(rows) - max_rows} more (use --out for the full frame)")
    c = int(round(portfolio["confidence"] * 100))
    print(f"  portfolio: gross={portfolio['gross_exposure']:.4f} net={portfolio['net_exposure']:.4f} "
          f"VaR{c}(hist)={_fmt(portfolio['var_historical'], '.5f')} ES{c}(hist)={_fmt(portfolio['es_historical'], '.5f')} "
          f"VaR{c}(gauss)={_fmt(portfolio['var_parametric'], '.5f')} ES{c}(gauss)={_fmt(portfolio['es_parametric'], '.5f')} "
          f"vol={_fmt(portfolio['volatility'], '.5f')} over {portfolio['history_days']} days")


def _write_out(frame, out: str) -> None:
    from plusultra_core import atomic

    target = Path(out)
    atomic.write_file(target, (lambda tmp: frame.to_parquet(tmp, index=False)) if target.suffix == ".parquet"
                      else frame.to_csv(index=False))


def _warn_in_sample(agent, start: str, end: str) -> None:
    """One stderr line when decision days fall inside the data the checkpoint was trained on."""
    first, last = train_range(agent.sidecar) or (None, None)
    if last and start <= last and (first is None or end >= first):
        days = start if start == end else f"{start}..{min(end, last)}"
        print(f"plusultra infer: warning: {days} is inside the checkpoint's training range {first}..{last}: "
              "those predictions are in-sample, not a forecast", file=sys.stderr)


def _infer(args) -> int:
    from plusultra_core.inference.agent import MarketNNPlusUltraAgent

    start = _check_date(args.date, "--date")
    end = _check_date(args.end, "--end") if args.end else start
    if end < start:
        raise ConfigError(f"--end {end} is before --date {start}")
    if args.out and Path(args.out).suffix not in _OUT_SUFFIXES:
        raise ConfigError(f"--out {args.out}: expected a .parquet or .csv file name")
    if args.max_rows < 1:
        raise ConfigError(f"--max-rows must be >= 1, got {args.max_rows}")
    symbols = [s.strip() for s in args.symbols.split(",") if s.strip()] if args.symbols else None
    agent = MarketNNPlusUltraAgent.from_checkpoint(args.checkpoint)
    db = args.db or ((agent.sidecar.get("config") or {}).get("data") or {}).get("db_path")
    if not db:
        raise ConfigError("no --db given and the checkpoint records no data.db_path")
    result = agent.predict(db, start, end, symbols=symbols)
    frame = result.frame
    if frame.empty:
        raise ConfigError(f"no predictions for {start}..{end} in {db}: no symbol has {agent.context_length} "
                          "valid bars ending on those days (a weekend/holiday, or past the data's end?)")
    _warn_in_sample(agent, start, end)  # once there are predictions: a failure stays one line
    print(f"checkpoint {result.checkpoint} (id {agent.checkpoint_id})  db {db}  data_version {result.data_version}")
    for day, rows in frame.groupby("timestamp", sort=True):
        key = str(day.date()) if day == day.normalize() else day.isoformat()
        _print_day(key, rows, result.risk[key], args.max_rows)
    if args.out:
        _write_out(frame, args.out)
        print(f"wrote {len(frame)} rows to {args.out}")
    if args.export:
        from plusultra_core.inference.export import export_predictions

        n = export_predictions(db, frame, agent.checkpoint_id)
        print(f"exported {n} rows to the predictions table of {db}")
    return 0


def _lineage(args) -> int:
    from plusultra_core.lineage import format_lineage, lineage_of_checkpoint, lineage_of_day

    target, path = args.target, Path(args.target)
    if path.is_file() or target.endswith((".pt", ".json")):
        if not path.is_file():
            raise CheckpointError(f"checkpoint not found: {target}; give a checkpoint .pt file or a day "
                                  f"YYYY-MM-DD ({describe_days(_store_root(args))})")
        chain = lineage_of_checkpoint(target)
    elif path.is_dir():
        raise CheckpointError(f"{target} is a directory; give a checkpoint .pt file or a day YYYY-MM-DD")
    elif _is_date(target):
        chain = lineage_of_day(_store_root(args), target)
    else:
        raise ConfigError(f"{target!r} is neither a checkpoint file nor a day YYYY-MM-DD; "
                          f"{describe_days(_store_root(args))}")
    print(format_lineage(chain))
    return 0


def _store_root(args):
    if args.store:
        return args.store
    from plusultra_pipeline.settings import load_settings

    return load_settings().store_path
