"""Every contract violation stops `validated_bars` with an error naming table, column and check,
the blocking check fails, and nothing reaches the store."""

from __future__ import annotations

import pytest
from dagster import AssetCheckKey, AssetKey

from plusultra_core.data.store import ParquetStore
from plusultra_pipeline.assets.features import lookback_periods
from plusultra_pipeline.definitions import build_definitions
from plusultra_pipeline.runner import materialize_history
from tests.core.data.bad_databases import DEFECTS, ROW_DEFECTS, STRUCTURE_DEFECTS
from tests.pipeline.conftest import settings_for

HISTORY = ("validated_bars", "feature_panel", "window_tensors")
# defects found before any partition exists (a symbol that cannot be a partition key): the run
# never starts, so there is no partition to record a failed check on
BEFORE_PARTITIONS = {"unusable_symbol"}


def _run(tmp_path, defect, instance):
    build, expected = DEFECTS[defect]
    db = build(tmp_path / f"{defect}.sqlite")
    settings = settings_for(db, tmp_path / "store", start="2020")
    with pytest.raises(Exception) as info:
        defs = build_definitions(settings)
        materialize_history(instance, defs, settings, lookback_periods(settings))
    return settings, expected, str(info.value) + repr(info.value)


@pytest.mark.parametrize("defect", ROW_DEFECTS)
def test_row_defects_fail_the_blocking_check_and_write_nothing(tmp_path, defect, dagster_instance):
    settings, (table, column, check), message = _run(tmp_path, defect, dagster_instance)
    assert table in message and column.split(",")[0] in message and check.split("(")[0] in message
    record = dagster_instance.get_latest_asset_check_evaluation_record(
        AssetCheckKey(AssetKey("validated_bars"), "pandera_contract"))
    if defect in BEFORE_PARTITIONS:
        assert record is None and not dagster_instance.get_runs()
    else:
        assert record is not None and record.status.value == "FAILED"
    store = ParquetStore(settings.store_path)
    assert not any(store.list_partitions(asset) for asset in HISTORY)


@pytest.mark.parametrize("defect", STRUCTURE_DEFECTS)
def test_structure_defects_name_the_problem_and_write_nothing(tmp_path, defect, dagster_instance):
    settings, expected, message = _run(tmp_path, defect, dagster_instance)
    assert expected in message
    assert not settings.store_path.exists() or not any(settings.store_path.rglob("*.parquet"))
