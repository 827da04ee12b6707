"""Asset jobs: the history half of the graph as one job, runnable over partition ranges."""

from __future__ import annotations

from dagster import AssetSelection, define_asset_job

from plusultra_pipeline.constants import FEATURE_PANEL, VALIDATED_BARS, WINDOW_TENSORS

HISTORY_ASSETS = (VALIDATED_BARS, FEATURE_PANEL, WINDOW_TENSORS)


def build_history_job():
    return define_asset_job(
        "history_job",
        selection=AssetSelection.assets(*HISTORY_ASSETS),
        description="Validated bars -> feature panel -> window tensors over a symbol × period range, as one run.",
    )
