"""Extract + validate benchmark: `SQLiteMarketDataset.load_panel(validate=True)` vs read_sql + pandera.

On a synthetic contract database (`synth_db.build_synthetic_database`, ``n_symbols`` x ``n_days``
business-day bars in ``series``, plus two market-wide series):

- ours: one DuckDB scan of the SQLite file straight into numpy arrays, every
  ``series``/``indicators``/``assets`` check of the pandera schemas (pandera's own checks run on
  the arrays, see `validation`), the panel assembled with ``ind_``/``mkt_`` as-of columns, and the
  ``validated_bars`` stage schema;
- peer: ``pandas.read_sql("SELECT * FROM series")`` + ``SeriesSchema.validate(df, lazy=True)``
  (pandera executing the same series checks on the pandas frame). The peer does less work than
  ours (no panel, no joins, no stage schema).

Also reported, to show where time goes: our extract alone (``validate=False``), read_sql alone
and pandera's ``validate`` alone on the already-read frame. Each measurement runs in a forked
child (`bench.common.measure`); heavy imports happen in the parent first so neither side pays
them. The database is cached under ``$PLUSULTRA_HOME/bench`` (same arguments -> same content).
``python -m bench.bench_extract --symbols 100 --days 2000`` runs a reduced scale.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

from bench.common import BenchResult, measure, print_results, scale_parser


def database(n_symbols: int, n_days: int, seed: int = 0) -> Path:
    """The synthetic database for this scale, built once and reused."""
    from plusultra_core.data.synth_db import build_synthetic_database

    root = Path(os.environ.get("PLUSULTRA_HOME", ".plusultra")) / "bench"
    root.mkdir(parents=True, exist_ok=True)
    path = root / f"synth_{n_symbols}x{n_days}_seed{seed}.sqlite"
    if not path.exists():
        build_synthetic_database(path, n_symbols=n_symbols, n_days=n_days, seed=seed)
    return path


def _ours(path: Path, validate: bool) -> dict:
    from plusultra_core.data.sqlite_dataset import SQLiteMarketDataset

    with SQLiteMarketDataset(path) as ds:
        panel = ds.load_panel(validate=validate)
    return {"rows": len(panel), "columns": panel.shape[1]}


def _read_sql(path: Path):
    import pandas as pd

    from plusultra_core.data.contract import SERIES

    with sqlite3.connect(path) as conn:
        return pd.read_sql(f"SELECT * FROM {SERIES}", conn)


def _peer(path: Path) -> dict:
    from plusultra_core.data.schemas import SeriesSchema

    df = _read_sql(path)
    SeriesSchema.validate(df, lazy=True)
    return {"rows": len(df)}


def _peer_read_only(path: Path) -> dict:
    return {"rows": len(_read_sql(path))}


def _pandera_only(df) -> dict:
    from plusultra_core.data.schemas import SeriesSchema

    t0 = time.perf_counter()
    SeriesSchema.validate(df, lazy=True)
    return {"seconds": time.perf_counter() - t0}


def run(n_symbols: int = 500, n_days: int = 5000, seed: int = 0) -> list[BenchResult]:
    """Measure ours vs the peer at ``n_symbols`` x ``n_days``; return result rows."""
    # imported in the parent so the forked children measure work, not imports
    import duckdb  # noqa: F401
    import pandera.pandas  # noqa: F401

    import plusultra_core.data.sqlite_dataset  # noqa: F401
    from plusultra_core.data.schemas import SeriesSchema

    import pandas as pd

    # pandera loads its backends (and hypothesis) on first use: do it here, not in a child
    SeriesSchema.validate(pd.DataFrame({"symbol": ["A"], "timestamp": ["2020-01-01"], "open": [1.0],
                                        "high": [1.0], "low": [1.0], "close": [1.0], "volume": [0.0]}))

    path = database(n_symbols, n_days, seed)
    scale = f"{n_symbols}x{n_days}"
    ours = measure(_ours, path, True)
    peer = measure(_peer, path)
    ours_extract = measure(_ours, path, False)
    peer_read = measure(_peer_read_only, path)
    frame = _read_sql(path)
    pandera_cost = measure(_pandera_only, frame)
    del frame
    extra = {"rows": ours.value["rows"], "panel_columns": ours.value["columns"],
             "ours_extract_only_s": round(ours_extract.seconds, 3),
             "read_sql_only_s": round(peer_read.seconds, 3),
             "pandera_validate_only_s": round(pandera_cost.value["seconds"], 3)}
    return [
        BenchResult("extract", f"load + validate seconds ({scale})", ours.seconds, peer.seconds,
                    "pandas.read_sql + pandera SeriesSchema.validate", "s", goal=">= 3x", extra=extra),
        BenchResult("extract", f"load + validate peak RSS MB ({scale})", ours.peak_rss_mb, peer.peak_rss_mb,
                    "pandas.read_sql + pandera SeriesSchema.validate", "MB"),
    ]


def main(argv: list[str] | None = None) -> None:
    parser = scale_parser(__doc__, days=5000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    results = run(args.symbols, args.days, args.seed)
    print_results(results)


if __name__ == "__main__":
    main()
