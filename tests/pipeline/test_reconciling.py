"""Fill fingerprints per decision day: the version `executed_trades` observes."""

from __future__ import annotations

import sqlite3

from plusultra_pipeline.reconciling import fill_versions


def test_a_database_without_fills_gives_every_day_the_same_empty_version(small_synth_db_path):
    versions = fill_versions(small_synth_db_path, ["2020-01-02", "2020-01-03"])
    assert len(set(versions.values())) == 1 and set(versions) == {"2020-01-02", "2020-01-03"}


def test_only_the_day_a_fill_executes_changes(demo_db_path, copy_db):
    days = ["2018-01-02", "2018-01-03", "2018-01-04"]
    before = fill_versions(demo_db_path, days)
    db = copy_db(demo_db_path)
    with sqlite3.connect(db) as conn:  # no decision_timestamp: executes the last trading day before it
        conn.execute("INSERT INTO trades VALUES (77777, '2018-01-04 10:00:00', 'SP500', 'buy', 1, 2700, 0, 'x', NULL)")
    after = fill_versions(db, days)
    assert [d for d in days if before[d] != after[d]] == ["2018-01-03"]
