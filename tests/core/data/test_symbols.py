"""Tradable symbols must be usable partition keys: refused when the assets table is validated and
before any key is made from them, with one line naming table, column, check and the symbols."""

from __future__ import annotations

import pandas as pd
import pytest

from plusultra_core.data import schemas, validation
from plusultra_core.data.contract import ASSETS
from plusultra_core.data.sharding import ShardingConfig, assign_shards
from plusultra_core.data.sqlite_dataset import SQLiteMarketDataset
from plusultra_core.errors import DataValidationError
from tests.core.data.bad_databases import DEFECTS, UNUSABLE_SYMBOLS


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    return DEFECTS["unusable_symbol"][0](tmp_path_factory.mktemp("symbols") / "symbols.sqlite")


@pytest.mark.parametrize("symbol, problem", [
    ("S" * 64, None), ("S" * 65, "65 characters, at most 64"), ("BRK.B", None), ("^GSPC", None),
    ("", "empty"), (" ", "empty"), (None, "empty"), ("..", "starts with '.'"), (".A", "starts with '.'"),
    ("A/B", "contains '/'"), ("A\\B", "contains '\\\\'"), ("A\x00B", "contains '\\x00'"),
])
def test_symbol_problem(symbol, problem):
    assert schemas.symbol_problem(symbol) == problem


def test_validation_reports_every_unusable_tradable_symbol(db):
    report = validation.validate_database(db)
    (violation,) = report.violations
    assert (violation.table, violation.column, violation.check) == (ASSETS, "symbol", "usable_symbol")
    assert violation.count == len(UNUSABLE_SYMBOLS)  # the market-wide '../FF' is not a key: fine
    assert set(violation.failure_cases["symbol"]) <= set(UNUSABLE_SYMBOLS)
    with SQLiteMarketDataset(db) as ds, pytest.raises(DataValidationError, match=r"assets\.symbol 'usable_symbol'"):
        ds.load_panel(["AAA"])


@pytest.mark.parametrize("mode", ["symbol", "sector", "hash"])
def test_no_shard_key_is_made_from_an_unusable_symbol(db, mode):
    with SQLiteMarketDataset(db) as ds:
        assets = ds.assets()
    with pytest.raises(DataValidationError) as info:
        assign_shards(assets, ShardingConfig(mode), where=str(db))
    message = str(info.value)
    assert "\n" not in message and len(message) < 400 + len(str(db))
    assert message.startswith(f"{db}: table 'assets', column 'symbol', check 'usable_symbol': "
                              f"{len(UNUSABLE_SYMBOLS)} tradable symbol(s) cannot be partition keys: ")
    assert "'" + "S" * 22 + "… (300 characters, at most 64)" in message  # cut to 24 characters
    assert "'..' (starts with '.')" in message and "'BRK/B' (contains '/')" in message
    assert (info.value.table, info.value.column, info.value.check) == (ASSETS, "symbol", "usable_symbol")
    # the good universe alone still shards
    good = assets[~assets["symbol"].isin(UNUSABLE_SYMBOLS)]
    assert set(assign_shards(good, ShardingConfig("symbol"))) == {"AAA", "BBB"}


def test_a_frame_without_tradable_checks_every_symbol():
    with pytest.raises(DataValidationError, match=r"'A/B' \(contains '/'\)"):
        assign_shards(pd.DataFrame({"symbol": ["OK", "A/B"]}), ShardingConfig("symbol"))
