"""The demo database: content against the source packages, repairs, atomic writes, daily appends."""

from __future__ import annotations

import hashlib
import re
import sqlite3

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plusultra_core.data import demo_db, sqlite_dataset, validation
from plusultra_core.data.contract import (ASSETS, BENCHMARKS, INDICATORS, MARKET_WIDE_CLASSES, SERIES, TRADES,
                                          missing_tables_and_columns)
from plusultra_core.data.demo_db import (append_trading_day, build_demo_database, clean_observations,
                                         repair_ohlcv)
from plusultra_core.data.sqlite_writer import DatabaseWriteError
from plusultra_core.errors import ContractError
from plusultra_pipeline.cli import main


def _query(path, sql, params=()):
    with sqlite3.connect(path) as conn:
        return pd.read_sql_query(sql, conn, params=params)


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- content --------------------------------------------------------------------------------

def test_assets_and_row_counts(demo_db_path):
    assets = _query(demo_db_path, f"SELECT * FROM {ASSETS}").set_index("symbol")
    assert set(assets.index[assets.tradable == 1]) == {"SP500", "NASDAQ", "MSFT"}
    wide = assets[assets.tradable == 0]
    assert set(wide.index) == {"VIX", "WTI", "CORE_CPI", "FF"}
    assert wide.asset_class.isin(MARKET_WIDE_CLASSES).all()
    assert wide.publication_lag_days.to_dict() == {"VIX": 0, "WTI": 1, "CORE_CPI": 45, "FF": 30}
    assert assets.loc["MSFT", "sector"] == "technology" and assets.loc["SP500", "sector"] == "broad_market"

    bars = _query(demo_db_path, f"SELECT symbol, COUNT(*) n, MIN(timestamp) lo, MAX(timestamp) hi "
                                f"FROM {SERIES} GROUP BY symbol").set_index("symbol")
    assert bars.n.to_dict() == {"SP500": 5031, "NASDAQ": 5031, "MSFT": 7983}
    assert tuple(bars.loc["SP500", ["lo", "hi"]]) == ("1999-01-04", "2018-12-31")
    assert tuple(bars.loc["MSFT", ["lo", "hi"]]) == ("1986-03-13", "2017-11-10")

    ind = _query(demo_db_path, f"SELECT symbol, name, COUNT(*) n FROM {INDICATORS} GROUP BY symbol, name")
    counts = {(r.symbol, r.name): r.n for r in ind.itertuples()}
    assert counts == {("VIX", "close"): 1305 - 46, ("WTI", "close"): 8611 - 290, ("CORE_CPI", "value"): 743,
                      ("FF", "mkt_rf"): 1109, ("FF", "smb"): 1109, ("FF", "hml"): 1109, ("FF", "rf"): 1109}
    # the labelled synthetic fill log (plusultra_core.data.demo_fills), decisions from 2018-01-02 on
    fills = _query(demo_db_path, f"SELECT strategy, COUNT(*) n, MIN(decision_timestamp) d FROM {TRADES} GROUP BY strategy")
    assert list(fills.strategy) == ["synthetic_demo"] and fills.n[0] == 493 and fills.d[0] == "2018-01-02"


def test_benchmarks_are_the_index_closes(demo_db_path):
    joined = _query(demo_db_path, f"SELECT b.benchmark, b.close AS b, s.close AS s FROM {BENCHMARKS} b "
                                  f"LEFT JOIN {SERIES} s ON s.symbol = b.benchmark AND s.timestamp = b.timestamp")
    assert joined.benchmark.value_counts().to_dict() == {"SP500": 5031, "NASDAQ": 5031}
    np.testing.assert_array_equal(joined.b, joined.s)


def test_contract_invariants_hold(demo_db_path):
    with sqlite3.connect(demo_db_path) as conn:
        assert missing_tables_and_columns(conn) == []
        bad = conn.execute(f"SELECT COUNT(*) FROM {SERIES} WHERE NOT (low > 0 AND low <= open AND low <= close "
                           f"AND high >= open AND high >= close AND volume >= 0)").fetchone()[0]
        orphans = conn.execute(f"SELECT COUNT(*) FROM (SELECT symbol FROM {SERIES} UNION SELECT symbol FROM "
                               f"{INDICATORS}) WHERE symbol NOT IN (SELECT symbol FROM {ASSETS})").fetchone()[0]
        weird_dates = conn.execute(f"SELECT COUNT(*) FROM {SERIES} WHERE timestamp NOT GLOB "
                                   f"'[12][0-9][0-9][0-9]-[01][0-9]-[0-3][0-9]'").fetchone()[0]
    assert (bad, orphans, weird_dates) == (0, 0, 0)


def test_demo_database_validates_clean(demo_db_path):
    report = validation.validate_database(demo_db_path)
    tables = report.to_dict()["tables"]
    assert set(tables) >= {ASSETS, SERIES, INDICATORS, BENCHMARKS}
    with_rows = {name: t["violations"] for name, t in tables.items() if t["rows"] > 0 and t["violations"]}
    assert with_rows == {}, report.to_text()
    assert report.ok, report.to_text()


def test_panel_has_the_interface_columns(demo_db_path):
    """The loader turns the demo content into the documented panel columns (market-wide as-of)."""
    panel = sqlite_dataset.SQLiteMarketDataset(demo_db_path).load_panel(["SP500"], "2015-06-01", "2015-06-30")
    assert {"open", "high", "low", "close", "volume", "mkt_vix_close", "mkt_wti_close", "mkt_core_cpi_value",
            "mkt_ff_mkt_rf", "mkt_ff_smb", "mkt_ff_hml", "mkt_ff_rf"} <= set(panel.columns)
    assert panel.notna().all().all() and len(panel) == 22


def test_values_match_the_package_loaders(demo_db_path):
    """Spot checks against the public loaders, and the fast file readers equal those loaders."""
    from arch.data import core_cpi, frenchdata, nasdaq, sp500, vix, wti
    from pmdarima.datasets import load_msft

    for module, file in ((sp500, "sp500.csv.gz"), (nasdaq, "nasdaq.csv.gz"), (vix, "vix.csv.gz"),
                         (wti, "wti.csv.gz"), (core_cpi, "core-cpi.csv.gz"), (frenchdata, "frenchdata.csv.gz")):
        name = module.__name__.rsplit(".", 1)[1]
        pd.testing.assert_frame_equal(demo_db._arch_data(name, file), module.load())
    msft = load_msft()
    pd.testing.assert_frame_equal(demo_db._pmdarima_msft(), msft)

    def value(sql, *params):
        return _query(demo_db_path, sql, params).iloc[0, 0]

    close_sql = f"SELECT close FROM {SERIES} WHERE symbol = ? AND timestamp = ?"
    ind_sql = f"SELECT value FROM {INDICATORS} WHERE symbol = ? AND name = ? AND timestamp = ?"
    assert value(close_sql, "SP500", "2008-09-29") == sp500.load().loc["2008-09-29", "Close"]
    assert value(close_sql, "NASDAQ", "2000-03-10") == nasdaq.load().loc["2000-03-10", "Close"]
    assert value(close_sql, "MSFT", "2008-09-29") == msft.set_index("Date").loc["2008-09-29", "Close"]
    assert value(ind_sql, "VIX", "close", "2015-08-24") == vix.load().loc["2015-08-24", "vix"]
    assert value(ind_sql, "WTI", "close", "2008-07-03") == wti.load().loc["2008-07-03", "DCOILWTICO"]
    assert value(ind_sql, "CORE_CPI", "value", "2018-11-01") == core_cpi.load().loc["2018-11-01", "CPILFESL"]
    # FF: month 2008-10 (raw code 200810, percent) is stamped at its month end, as a decimal return.
    ff = frenchdata.load()
    raw = ff["Mkt-RF"].to_numpy()[ff.index.as_unit("ns").asi8 == 200810][0]
    assert value(ind_sql, "FF", "mkt_rf", "2008-10-31") == pytest.approx(raw / 100.0)
    assert raw == pytest.approx(-17.23)


# --- repairs --------------------------------------------------------------------------------

def _glitchy() -> pd.DataFrame:
    rows = [  # date, open, high, low, close, volume
        ("2020-01-03", 10.0, 11.0, 9.0, 10.5, 100.0),
        ("2020-01-02", 9.0, 10.0, 8.0, 9.5, -5.0),      # out of order; leading negative volume
        ("2020-01-06", np.nan, 11.0, 10.0, 10.8, 0.0),   # missing open -> prev close 10.5; zero volume
        ("2020-01-07", 10.8, 10.0, 10.5, 11.2, 120.0),   # high below body, low inside: clamp both
        ("2020-01-08", 11.0, 12.0, 10.0, -1.0, 130.0),   # negative close: dropped
        ("2020-01-09", 11.0, np.inf, 0.0, 11.5, np.nan),  # bad high and low -> body; missing volume
        ("2020-01-09", 11.1, 12.0, 11.0, 11.6, 140.0),   # duplicate date: the later row wins
        ("2020-01-10", 11.6, 12.5, 11.2, np.nan, 150.0),  # missing close: dropped
    ]
    df = pd.DataFrame(rows, columns=["date", "open", "high", "low", "close", "volume"])
    return df.set_index(pd.DatetimeIndex(df.pop("date")))


def test_repair_ohlcv_rules_and_counts():
    fixed, counts = repair_ohlcv(_glitchy())
    assert counts == {"unsorted_rows_sorted": 1, "duplicate_dates_dropped": 1, "bad_close_dropped": 2,
                      "bad_open_set_to_previous_close": 1, "ohlc_inconsistent_clamped": 1,
                      "volume_zero_filled_from_previous": 1, "volume_leading_bad_set_zero": 1}
    expected = pd.DataFrame({
        "open": [9.0, 10.0, 10.5, 10.8, 11.1], "high": [10.0, 11.0, 11.0, 11.2, 12.0],
        "low": [8.0, 9.0, 10.0, 10.5, 11.0], "close": [9.5, 10.5, 10.8, 11.2, 11.6],
        "volume": [0.0, 100.0, 100.0, 120.0, 140.0]},
        index=pd.DatetimeIndex(["2020-01-02", "2020-01-03", "2020-01-06", "2020-01-07", "2020-01-09"], name="date"))
    pd.testing.assert_frame_equal(fixed, expected, check_index_type=False, check_freq=False)


def test_repair_bad_high_low_and_missing_volume():
    df = _glitchy().iloc[[0, 5]]  # 2020-01-03 then the inf-high / zero-low / NaN-volume bar
    fixed, counts = repair_ohlcv(df)
    assert counts == {"bad_high_low_set_from_body": 1, "volume_zero_filled_from_previous": 1}
    assert fixed.iloc[1].tolist() == [11.0, 11.5, 11.0, 11.5, 100.0]


def test_repair_is_causal():
    """Repairing data up to a date gives the same rows as repairing everything then cutting."""
    full, _ = repair_ohlcv(_glitchy())
    for cut in _glitchy().index.unique():
        raw = _glitchy()
        part, _ = repair_ohlcv(raw[raw.index <= cut])
        pd.testing.assert_frame_equal(part, full[full.index <= cut], check_freq=False)


_price = st.one_of(st.floats(0.5, 200.0), st.sampled_from([0.0, -1.0, np.nan, np.inf]))
_bar = st.tuples(st.integers(0, 30), _price, _price, _price, _price,
                 st.one_of(st.floats(0.0, 1e6), st.sampled_from([-1.0, np.nan])))


@settings(max_examples=40, deadline=None)
@given(st.lists(_bar, min_size=1, max_size=25))
def test_repair_invariants_and_causality_property(bars):
    """Any glitchy input -> sorted unique OHLC-consistent bars, and no row depends on later rows."""
    df = pd.DataFrame([b[1:] for b in bars], columns=list(demo_db.OHLCV),
                      index=pd.Timestamp("2020-01-01") + pd.to_timedelta([b[0] for b in bars], unit="D"))
    fixed, _ = repair_ohlcv(df)
    assert fixed.index.is_monotonic_increasing and fixed.index.is_unique
    v = fixed.to_numpy()
    assert np.isfinite(v).all() and (v[:, :4] > 0).all() and (v[:, 4] >= 0).all()
    body = fixed[["open", "close"]]
    assert ((fixed.low <= body.min(axis=1)) & (fixed.high >= body.max(axis=1))).all()
    cut = df.index[len(df) // 2]
    part, _ = repair_ohlcv(df[df.index <= cut])
    pd.testing.assert_frame_equal(part, fixed[fixed.index <= cut], check_freq=False)


def test_clean_observations():
    idx = pd.DatetimeIndex(["2020-01-01", "2020-01-02", "2020-01-03", "2020-01-06"])
    df = pd.DataFrame({"close": [10.0, np.nan, -1.0, 12.0]}, index=idx)
    levels, counts = clean_observations(df, positive=True)
    assert levels.close.tolist() == [10.0, 12.0]
    assert counts == {"missing_dropped": 1, "non_positive_dropped": 1}
    returns, counts = clean_observations(df, positive=False)
    assert returns.close.tolist() == [10.0, -1.0, 12.0] and counts == {"missing_dropped": 1}


def test_frenchdata_index_decoding():
    assert list(demo_db._decode_yyyymm(pd.Index([192607, 200002]))) == [pd.Timestamp("1926-07-31"),
                                                                       pd.Timestamp("2000-02-29")]
    with pytest.raises(ContractError, match="YYYYMM"):
        demo_db._decode_yyyymm(pd.Index([202013]))


def test_docstring_repair_table_matches_the_build(demo_db_path, tmp_path):
    summary = build_demo_database(tmp_path / "again.sqlite")
    table = re.search(r"repair +rows\n=+.*?\n(.*?)\n=+", demo_db.__doc__, re.S).group(1)
    documented: dict[str, dict[str, int]] = {}
    for line in table.strip().splitlines():
        symbol, repair, n = line.split()
        documented.setdefault(symbol, {})[repair] = int(n)
    assert summary.repairs == documented
    assert summary.rows[SERIES] == 18045 and summary.symbols == ("SP500", "NASDAQ", "MSFT")
    assert (summary.start, summary.end) == (pd.Timestamp("1986-03-13"), pd.Timestamp("2018-12-31"))


# --- atomic writes --------------------------------------------------------------------------

def test_refuses_to_overwrite_and_replaces_when_asked(tmp_path):
    path = tmp_path / "demo.sqlite"
    path.write_bytes(b"precious")
    with pytest.raises(DatabaseWriteError, match=re.escape(str(path))):
        build_demo_database(path)
    assert path.read_bytes() == b"precious"
    build_demo_database(path, overwrite=True)
    assert _query(path, f"SELECT COUNT(*) n FROM {SERIES}").n[0] == 18045
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo.sqlite"]


def test_missing_directory_is_an_error(tmp_path):
    with pytest.raises(DatabaseWriteError, match="does not exist"):
        build_demo_database(tmp_path / "nope" / "demo.sqlite")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("existing", [False, True])
def test_failure_mid_build_leaves_nothing_behind(tmp_path, monkeypatch, existing):
    path = tmp_path / "demo.sqlite"
    if existing:
        path.write_bytes(b"old")

    def explode(conn, candles, market):
        conn.execute(f"INSERT INTO {ASSETS} VALUES ('X', 'x', 'equity', NULL, 'USD', NULL, 1, 0)")
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(demo_db, "_write_demo", explode)
    with pytest.raises(RuntimeError, match="disk on fire"):
        build_demo_database(path, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == (["demo.sqlite"] if existing else [])
    if existing:
        assert path.read_bytes() == b"old"


def test_cli_demo_db_exit_codes(tmp_path, capsys):
    path = tmp_path / "demo.sqlite"
    assert main(["demo-db", str(path)]) == 0
    assert "series=18045" in capsys.readouterr().out
    digest = _sha(path)
    assert main(["demo-db", str(path)]) == 2
    assert "already exists" in capsys.readouterr().err and _sha(path) == digest
    assert main(["demo-db", str(path), "--force"]) == 0
    assert main(["demo-db", str(tmp_path / "missing" / "demo.sqlite")]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo.sqlite"]


# --- append_trading_day ---------------------------------------------------------------------

def test_append_trading_day(demo_db_path, copy_db):
    db = copy_db(demo_db_path)
    day = append_trading_day(db, seed=3)
    assert day == pd.Timestamp("2019-01-01")  # next weekday after 2018-12-31 (no holiday calendar)
    new = _query(db, f"SELECT * FROM {SERIES} WHERE timestamp = '2019-01-01'").set_index("symbol")
    assert set(new.index) == {"SP500", "NASDAQ", "MSFT"}
    assert ((new.low <= new[["open", "close"]].min(axis=1)) & (new.high >= new[["open", "close"]].max(axis=1))
            & (new.low > 0) & (new.volume > 0)).all()
    prev = _query(db, f"SELECT symbol, close FROM {SERIES} WHERE (symbol = 'MSFT' AND timestamp = '2017-11-10') "
                      f"OR (symbol <> 'MSFT' AND timestamp = '2018-12-31')").set_index("symbol").close
    move = new.close / prev.reindex(new.index) - 1
    assert (move.abs() <= 0.06).all() and (move != 0).all()
    bench = _query(db, f"SELECT benchmark, close FROM {BENCHMARKS} WHERE timestamp = '2019-01-01'")
    assert bench.set_index("benchmark").close.to_dict() == new.close[["NASDAQ", "SP500"]].to_dict()

    twin = copy_db(demo_db_path)
    assert append_trading_day(twin, seed=3) == day
    assert _query(twin, f"SELECT * FROM {SERIES} WHERE timestamp = '2019-01-01'").set_index("symbol").equals(new)
    assert append_trading_day(db, seed=3) == pd.Timestamp("2019-01-02")  # chains day after day


def test_append_trading_day_rejects_bad_days(demo_db_path, copy_db, tmp_path):
    db = copy_db(demo_db_path)
    digest = _sha(db)
    with pytest.raises(DatabaseWriteError, match="2018-12-31"):
        append_trading_day(db, "2018-12-31")
    with pytest.raises(DatabaseWriteError, match="weekday"):
        append_trading_day(db, "2019-01-05")  # a Saturday
    assert _sha(db) == digest
    assert append_trading_day(db, "2019-01-07") == pd.Timestamp("2019-01-07")
    with pytest.raises(DatabaseWriteError, match="not found"):
        append_trading_day(tmp_path / "missing.sqlite")
    empty = tmp_path / "empty.sqlite"
    sqlite3.connect(empty).close()
    with pytest.raises(ContractError, match="missing"):
        append_trading_day(empty)
