"""Incremental = rebuild, as a property: random edits to a small real database (append a day,
correct a bar, add a symbol, in any combination), materialised incrementally on top of the
previous store, give exactly the store a from-scratch build of the edited database gives
(`store_contents`: the same partitions, every value and every sidecar field but the write
identity).

Hypothesis draws the edits; each example costs three history builds on an in-memory instance,
so the examples are few and the test is marked slow (it runs in CI all the same).
"""

from __future__ import annotations

import shutil
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest
from dagster import DagsterInstance
from hypothesis import HealthCheck, example, given, settings, strategies as st

from plusultra_core.data.sharding import ShardingConfig
from plusultra_pipeline.assets.features import lookback_periods
from plusultra_pipeline.definitions import build_definitions
from plusultra_pipeline.runner import materialize_history
from tests.pipeline.conftest import settings_for
from tests.pipeline.store_contents import differences, store_contents

pytestmark = pytest.mark.slow

SYMBOLS = [f"S000{i}" for i in range(6)]

append_day = st.tuples(st.just("append_day"), st.floats(-0.05, 0.05))
change_bar = st.tuples(st.just("change_bar"), st.sampled_from(SYMBOLS), st.integers(0, 599), st.floats(0.8, 1.25))
add_symbol = st.tuples(st.just("add_symbol"), st.sampled_from(SYMBOLS), st.integers(300, 590))
EDITS = st.lists(st.one_of(append_day, change_bar, add_symbol), min_size=1, max_size=3)


def _apply(db: Path, edit: tuple) -> None:
    with sqlite3.connect(db) as conn:
        kind = edit[0]
        if kind == "append_day":  # one new bar per tradable symbol on the next business day
            last = conn.execute("SELECT max(timestamp) FROM series").fetchone()[0]
            day = conn.execute("SELECT date(?, CASE strftime('%w', ?) WHEN '5' THEN '+3 day' "
                               "WHEN '6' THEN '+2 day' ELSE '+1 day' END)", (last, last)).fetchone()[0]
            conn.execute("INSERT INTO series SELECT symbol, ?, close, max(close, close * (1 + ?)) * 1.01, "
                         "min(close, close * (1 + ?)) * 0.99, close * (1 + ?), volume FROM series "
                         "WHERE timestamp = ? AND symbol IN (SELECT symbol FROM assets WHERE tradable = 1)",
                         (day, edit[1], edit[1], edit[1], last))
        elif kind == "change_bar":  # a corrected close (high/low widened to stay consistent)
            _, symbol, index, factor = edit
            ts = conn.execute("SELECT timestamp FROM series WHERE symbol = ? ORDER BY timestamp LIMIT 1 OFFSET ?",
                              (symbol, index)).fetchone()[0]
            conn.execute("UPDATE series SET close = close * ?, high = max(high, close * ?), "
                         "low = min(low, close * ?) WHERE symbol = ? AND timestamp = ?",
                         (factor, factor, factor, symbol, ts))
        else:  # a new listing: a copy of a symbol's bars from its first day, scaled
            _, source, first = edit
            new = f"N{conn.execute('SELECT count(*) FROM assets').fetchone()[0]:04d}"
            conn.execute("INSERT INTO assets SELECT ?, 'new listing', asset_class, sector, currency, exchange, "
                         "tradable, publication_lag_days FROM assets WHERE symbol = ?", (new, source))
            conn.execute("INSERT INTO series SELECT ?, timestamp, open * 1.1, high * 1.1, low * 1.1, close * 1.1, "
                         "volume FROM series WHERE symbol = ? AND timestamp >= (SELECT timestamp FROM series "
                         "WHERE symbol = ? ORDER BY timestamp LIMIT 1 OFFSET ?)", (new, source, source, first))


def _materialize(db: Path, store: Path, instance) -> None:
    config = replace(settings_for(db, store), sharding=ShardingConfig("hash", 3))
    # fresh definitions each time, as the CLI loads them: the partitions end at the data's last bar
    materialize_history(instance, build_definitions(config), config, lookback_periods(config))


@settings(max_examples=3, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(edits=EDITS)
# every kind of edit at least once, whatever Hypothesis draws
@example(edits=[("append_day", 0.01)])
@example(edits=[("add_symbol", "S0002", 400)])
@example(edits=[("change_bar", "S0003", 100, 1.2), ("append_day", -0.02)])
def test_incremental_materialise_after_random_edits_equals_a_rebuild(edits, small_synth_db_path, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("edits")
    db = tmp / "market.sqlite"
    shutil.copyfile(small_synth_db_path, db)
    with DagsterInstance.ephemeral() as instance:
        _materialize(db, tmp / "incremental", instance)
        for edit in edits:
            _apply(db, edit)
        _materialize(db, tmp / "incremental", instance)
    with DagsterInstance.ephemeral() as instance:
        _materialize(db, tmp / "rebuild", instance)
    assert differences(store_contents(tmp / "incremental"), store_contents(tmp / "rebuild")) == [], edits
