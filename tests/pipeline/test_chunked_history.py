"""A history run processed in bounded chunks (`plusultra_core.chunks`) stores exactly what an
unchunked run stores: the same partitions, the same bytes, the same content data versions and the
same per-partition events. A chunk size of one byte makes every shard its own chunk (the cross-
sectional ranks then come from their own pass over the universe).

In-memory Dagster instances: the tests are about values and events, not storage.
"""

from __future__ import annotations

import sqlite3
from dataclasses import replace

import pandas as pd
import pytest
from dagster import AssetKey, DagsterEventType, DagsterInstance, EventRecordsFilter

from plusultra_core import chunks
from plusultra_core.data.sharding import ShardingConfig
from plusultra_core.data.store import ParquetStore
from plusultra_pipeline.assets.features import lookback_periods
from plusultra_pipeline.definitions import build_definitions
from plusultra_pipeline.runner import materialize_history
from tests.pipeline.conftest import settings_for

HISTORY = ("validated_bars", "feature_panel", "window_tensors")
VOLATILE_SIDECAR = ("write_id", "written_at")  # differ between any two writes


def _build(db, root, monkeypatch, chunk_bytes: int | None):
    if chunk_bytes is not None:
        monkeypatch.setattr(chunks, "CHUNK_BYTES", chunk_bytes)
    settings = replace(settings_for(db, root), sharding=ShardingConfig("hash", 4))
    defs = build_definitions(settings)
    with DagsterInstance.ephemeral() as instance:
        materialize_history(instance, defs, settings, lookback_periods(settings))
        events = {asset: _events(instance, asset, str(settings.store_path)) for asset in HISTORY}
    monkeypatch.undo()
    return ParquetStore(settings.store_path), events


def _events(instance, asset: str, root: str) -> dict[str, tuple]:
    """``partition -> (data version, metadata)`` of the asset's materializations (paths relative
    to the store root, which differs between the two builds)."""
    out = {}
    for record in instance.get_event_records(EventRecordsFilter(DagsterEventType.ASSET_MATERIALIZATION,
                                                                asset_key=AssetKey(asset))):
        mat = record.asset_materialization
        meta = {k: (str(v.value).replace(root, "<root>") if k == "path" else v.value) for k, v in mat.metadata.items()}
        out[mat.partition] = (mat.tags["dagster/data_version"], meta)
    return out


def test_chunked_run_stores_exactly_what_an_unchunked_run_stores(tmp_path, small_synth_db_path, monkeypatch):
    whole, whole_events = _build(small_synth_db_path, tmp_path / "whole", monkeypatch, None)
    chunked, chunked_events = _build(small_synth_db_path, tmp_path / "chunked", monkeypatch, 1)
    for asset in HISTORY:
        parts = whole.list_partitions(asset)
        assert parts and chunked.list_partitions(asset) == parts, asset
        for part in parts:
            pd.testing.assert_frame_equal(chunked.read(asset, [part]), whole.read(asset, [part]), check_exact=True)
            a, b = (dict(s.read_metadata(asset, part)) for s in (whole, chunked))
            assert {k: v for k, v in a.items() if k not in VOLATILE_SIDECAR} == \
                   {k: v for k, v in b.items() if k not in VOLATILE_SIDECAR}, (asset, part)
        assert chunked_events[asset] == whole_events[asset], asset
    # the ranks compare all six symbols, though each feature chunk held one shard only
    ranks = chunked.read("feature_panel", columns=["xs_rank_mom_20"])["xs_rank_mom_20"].dropna()
    assert ranks.min() == 0.0 and ranks.max() == 1.0


def test_contract_failure_in_a_later_chunk_writes_nothing(tmp_path, small_synth_db_path, copy_db, monkeypatch):
    db = copy_db(small_synth_db_path)
    with sqlite3.connect(db) as conn:  # one OHLC-inconsistent bar of the last symbol (the last chunks)
        conn.execute("UPDATE series SET high = low * 0.5 WHERE symbol = 'S0005' AND timestamp = "
                     "(SELECT MAX(timestamp) FROM series WHERE symbol = 'S0005')")
    with pytest.raises(Exception, match="high"):
        _build(db, tmp_path / "store", monkeypatch, 1)
    assert not any(ParquetStore(tmp_path / "store").list_partitions(a) for a in HISTORY)
