"""The synthetic database: determinism, bar consistency, model structure, bad arguments, CLI."""

from __future__ import annotations

import hashlib
import sqlite3

import numpy as np
import pandas as pd
import pytest

from plusultra_core.data import validation
from plusultra_core.data.contract import (ASSETS, BENCHMARKS, CONTRACT_TABLES, INDICATORS, MARKET_WIDE_CLASSES,
                                          SERIES, missing_tables_and_columns)
from plusultra_core.data.sqlite_writer import DatabaseWriteError
from plusultra_core.data.synth_db import (MARKET_ENTRY, MARKET_PERSISTENCE, build_synthetic_database,
                                          regime_paths, simulate_market)
from plusultra_pipeline.cli import main


def _tables(path) -> dict[str, list[tuple]]:
    with sqlite3.connect(path) as conn:
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2, 3").fetchall() for t in CONTRACT_TABLES}


def _series(path) -> pd.DataFrame:
    with sqlite3.connect(path) as conn:
        return pd.read_sql_query(f"SELECT * FROM {SERIES}", conn)


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_same_seed_same_content_and_different_seed_differs(tmp_path):
    kw = dict(n_symbols=5, n_days=300, n_sectors=2)
    a = build_synthetic_database(tmp_path / "a.sqlite", seed=11, **kw)
    build_synthetic_database(tmp_path / "b.sqlite", seed=11, **kw)
    build_synthetic_database(tmp_path / "c.sqlite", seed=12, **kw)
    ta, tb, tc = (_tables(tmp_path / f"{n}.sqlite") for n in "abc")
    assert ta == tb
    assert ta[ASSETS] == tc[ASSETS]  # universe and sectors do not depend on the seed ...
    assert ta[SERIES] != tc[SERIES] and ta[INDICATORS] != tc[INDICATORS]  # ... the prices do
    # 300 business days from 2000-01-03 end 2001-02-23: SYNVIX daily + SYNCPI for 14 month starts
    assert a.end == pd.Timestamp("2001-02-23")
    assert a.rows == {ASSETS: 7, SERIES: 1500, INDICATORS: 300 + 14, "trades": 0, BENCHMARKS: 300}


def test_small_synth_fixture_bars_are_consistent(small_synth_db_path):
    df = _series(small_synth_db_path)
    assert df.groupby("symbol").size().to_dict() == {f"S{i:04d}": 600 for i in range(6)}
    assert not df.duplicated(["symbol", "timestamp"]).any()
    body_hi, body_lo = df[["open", "close"]].max(axis=1), df[["open", "close"]].min(axis=1)
    assert ((df.low > 0) & (df.low <= body_lo) & (df.high >= body_hi) & (df.volume >= 1)).all()
    assert np.isfinite(df[["open", "high", "low", "close", "volume"]].to_numpy()).all()
    days = pd.to_datetime(df.timestamp)
    assert (days.dt.weekday < 5).all() and days.min() == pd.Timestamp("2000-01-03")
    with sqlite3.connect(small_synth_db_path) as conn:
        assert missing_tables_and_columns(conn) == []
        assets = pd.read_sql_query(f"SELECT * FROM {ASSETS}", conn).set_index("symbol")
        cpi = pd.read_sql_query(f"SELECT timestamp FROM {INDICATORS} WHERE symbol = 'SYNCPI'", conn)
        vix = pd.read_sql_query(f"SELECT value FROM {INDICATORS} WHERE symbol = 'SYNVIX'", conn)
    wide = assets[assets.tradable == 0]
    assert wide.asset_class.isin(MARKET_WIDE_CLASSES).all()
    assert wide.publication_lag_days.to_dict() == {"SYNVIX": 0, "SYNCPI": 45}
    assert assets[assets.tradable == 1].sector.nunique() == 6  # 6 symbols over min(6, 10) sectors
    assert (pd.to_datetime(cpi.timestamp).dt.day == 1).all() and len(vix) == 600
    assert (vix.value > 0).all()


def test_small_synth_validates_clean(small_synth_db_path):
    report = validation.validate_database(small_synth_db_path)
    tables = report.to_dict()["tables"]
    with_rows = {name: t["violations"] for name, t in tables.items() if t["rows"] > 0 and t["violations"]}
    assert with_rows == {}, report.to_text()
    assert report.ok, report.to_text()


def test_open_gaps_from_previous_close_and_benchmark_is_equal_weight():
    mk = simulate_market(8, 400, seed=3, n_sectors=2)
    gap = np.log(mk.open[1:] / mk.close[:-1])  # [T-1, N] overnight gap
    move = np.log(mk.close[1:] / mk.close[:-1])
    assert np.abs(gap).mean() < 0.5 * np.abs(move).mean()  # opens sit near the previous close
    bench_ret = mk.benchmark[1:] / mk.benchmark[:-1] - 1
    np.testing.assert_allclose(bench_ret, (mk.close[1:] / mk.close[:-1] - 1).mean(axis=1))


def test_factor_structure_and_volume():
    mk = simulate_market(40, 1500, seed=5, n_sectors=4)
    r = np.diff(np.log(mk.close), axis=0)  # [T-1, N]
    corr = np.corrcoef(r.T)
    sector = np.array(mk.sectors)
    same = (sector[:, None] == sector[None, :]) & ~np.eye(40, dtype=bool)
    other = sector[:, None] != sector[None, :]
    assert corr[other].mean() > 0.1  # the market factor moves everything together
    assert corr[same].mean() > corr[other].mean() + 0.05  # sector factors add co-movement
    # volume rises with |return| (rank correlation per symbol, averaged)
    ranks = lambda a: a.argsort(axis=0).argsort(axis=0)  # noqa: E731
    rho = [np.corrcoef(ranks(np.abs(r))[:, i], ranks(mk.volume[1:])[:, i])[0, 1] for i in range(40)]
    assert np.mean(rho) > 0.1
    assert (mk.vix > 0).all()


def test_regime_paths_are_persistent_markov_chains():
    rng = np.random.default_rng(0)
    z = regime_paths(rng, 20000, 3, MARKET_PERSISTENCE, MARKET_ENTRY)
    assert z.shape == (20000, 3) and set(np.unique(z)) == {0, 1, 2}
    # a state persists: P(stay) = 1 - q + q * pi, with q = 1 / persistence
    for state, (mean_len, p) in enumerate(zip(MARKET_PERSISTENCE, MARKET_ENTRY)):
        here = z[:-1] == state
        stay = (z[1:] == state)[here].mean()
        assert stay == pytest.approx(1 - 1 / mean_len + p / mean_len, abs=0.02)
    assert not (z[:, 0] == z[:, 1]).all()  # chains are independent


@pytest.mark.parametrize("kwargs, message", [
    ({"n_symbols": 0}, "n_symbols must be an integer >= 1"),
    ({"n_days": 1}, "n_days must be an integer >= 2"),
    ({"seed": -1}, "seed must be an integer >= 0"),
    ({"n_sectors": 0}, "n_sectors must be an integer >= 1"),
    ({"n_symbols": 2.5}, "n_symbols"),
    ({"start": "not-a-date"}, "start 'not-a-date' is not a date"),
])
def test_bad_arguments_write_nothing(tmp_path, kwargs, message):
    args = {"n_symbols": 2, "n_days": 10, "seed": 0, **kwargs}
    with pytest.raises(DatabaseWriteError, match=message):
        build_synthetic_database(tmp_path / "x.sqlite", **args)
    assert list(tmp_path.iterdir()) == []


def test_existing_file_and_missing_directory(tmp_path):
    path = tmp_path / "x.sqlite"
    path.write_bytes(b"keep me")
    with pytest.raises(DatabaseWriteError, match="already exists"):
        build_synthetic_database(path, n_symbols=2, n_days=10, seed=0)
    assert path.read_bytes() == b"keep me"
    with pytest.raises(DatabaseWriteError, match="does not exist"):
        build_synthetic_database(tmp_path / "no" / "x.sqlite", n_symbols=2, n_days=10, seed=0)
    build_synthetic_database(path, n_symbols=2, n_days=10, seed=0, overwrite=True, start="2021-06-05")
    assert _series(path).timestamp.min() == "2021-06-07"  # a Saturday start rolls to Monday
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.sqlite"]


def test_cli_synth_db(tmp_path, capsys):
    path = tmp_path / "s.sqlite"
    base = ["synth-db", str(path), "--symbols", "3", "--days", "50", "--seed", "1"]
    assert main(base + ["--sectors", "2", "--start", "2010-01-04"]) == 0
    out = capsys.readouterr().out
    assert "3 symbols in 2 sectors x 50 business days (2010-01-04" in out and "series=150" in out
    digest = _sha(path)
    assert main(base) == 2
    assert "already exists" in capsys.readouterr().err and _sha(path) == digest
    assert main(base + ["--force"]) == 0 and _sha(path) != digest  # replaced (different start date)
    bad = tmp_path / "bad.sqlite"
    assert main(["synth-db", str(bad), "--symbols", "0", "--days", "50", "--seed", "1"]) == 2
    assert "n_symbols must be an integer >= 1" in capsys.readouterr().err
    assert main(["synth-db", str(tmp_path / "no" / "s.sqlite"), "--symbols", "1", "--days", "5", "--seed", "1"]) == 2
    with pytest.raises(SystemExit) as exc:  # argparse rejects a non-integer before any handler runs
        main(["synth-db", str(bad), "--symbols", "many", "--days", "5", "--seed", "1"])
    assert exc.value.code == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.sqlite"]
