"""``plusultra reconcile``: executed fills (the database's ``trades``) against the positions the
stored inference frames proposed -- fill rate, realised vs simulated cost, implementation
shortfall, overall and per symbol (``--days`` also per day). Reads only; the Dagster asset
``trade_reconciliation`` stores the same numbers per day. A bad fill is an error naming its row.
"""

from __future__ import annotations

import json

import pandas as pd

from plusultra_core.errors import ConfigError

SYMBOL_COLUMNS = ["fills", "fill_rate", "traded_notional", "realised_cost_bps", "simulated_cost_bps",
                  "shortfall_bps", "opportunity_cost"]
DAY_COLUMNS = ["day", "symbol", "position", "intended_shares", "filled_shares", "fill_rate",
               "realised_cost_bps", "shortfall_bps"]


def register(subparsers) -> None:
    p = subparsers.add_parser("reconcile", help="compare executed fills (trades) with the positions the stored "
                                                "inference frames proposed: fill rate, costs, shortfall")
    p.add_argument("--config", default=None, help="pipeline settings YAML (default: $PLUSULTRA_CONFIG or configs/pipeline.yaml)")
    p.add_argument("--db", default=None, help="SQLite market database (overrides the settings)")
    p.add_argument("--from", dest="first", default=None, help="first decision day YYYY-MM-DD (default: the first stored)")
    p.add_argument("--to", dest="last", default=None, help="last decision day YYYY-MM-DD (default: the last stored)")
    p.add_argument("--days", action="store_true", help="also print one row per decision day and symbol")
    p.add_argument("--json", action="store_true", help="print summary, per-symbol and per-day rows as JSON")
    p.set_defaults(handler=_reconcile)


def _day(value, flag: str) -> pd.Timestamp | None:
    if value is None:
        return None
    try:
        day = pd.Timestamp(value)
    except (ValueError, TypeError):
        day = None
    if day is None or str(day.date()) != value:
        raise ConfigError(f"{flag} must be a day written YYYY-MM-DD, got {value!r}")
    return day


def _reconcile(args) -> int:
    from plusultra_core.data.store import ParquetStore
    from plusultra_pipeline.cli.run_commands import _load
    from plusultra_pipeline.reconciling import reconcile_stored_days, stored_days

    settings = _load(args)
    first, last = _day(args.first, "--from"), _day(args.last, "--to")
    store = ParquetStore(settings.store_path)
    stored = stored_days(store)
    if not stored:
        raise ConfigError(f"no stored inference frames under {settings.store_path}; run `plusultra demo` "
                          "or materialise inference_frames first")
    days = [d for d in stored if (first is None or pd.Timestamp(d) >= first) and (last is None or pd.Timestamp(d) <= last)]
    if not days:
        raise ConfigError(f"no stored inference frame between {args.first or 'the start'} and {args.last or 'the end'}; "
                          f"stored days run {stored[0]}..{stored[-1]}")
    result = reconcile_stored_days(settings, store, settings.database_path, days)
    summary, by_symbol = result.summary(), result.by_symbol()
    if args.json:
        print(json.dumps({"days": [days[0], days[-1]], "summary": summary,
                          "by_symbol": json.loads(by_symbol.reset_index().to_json(orient="records")),
                          "by_day": json.loads(result.table.to_json(orient="records", date_format="iso"))},
                         indent=2, default=str))
        return 0
    print(f"reconciliation of {summary['fills']} fill(s) against {summary['days']} decision day(s) "
          f"{days[0]}..{days[-1]} (capital {settings.reconciliation.capital:,.0f}, "
          f"fills tagged {settings.reconciliation.strategy or 'any'})")
    print(f"  fill rate {summary['fill_rate']:.1%} of the paper orders' notional; "
          f"realised cost {summary['realised_cost_bps']:.2f} bps of traded notional vs "
          f"{summary['simulated_cost_bps']:g} bps simulated; implementation shortfall "
          f"{summary['shortfall_bps']:.1f} bps of the paper orders"
          + (f" ({summary['pending_days']} day(s) without a next bar yet)" if summary["pending_days"] else ""))
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(by_symbol[SYMBOL_COLUMNS].round(3).to_string())
        if args.days:
            print(result.table[DAY_COLUMNS].round(3).to_string(index=False))
    return 0
