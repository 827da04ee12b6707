"""Fixtures for pipeline tests: settings pointing at a tmp store and a test Dagster instance."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from dagster import instance_for_test

from plusultra_pipeline.settings import DemoSettings, load_settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def dagster_instance():
    with instance_for_test() as instance:
        yield instance


def settings_for(db_path, store_root, **history):
    settings = load_settings(environ={})
    settings = replace(settings, database=str(db_path), store_root=str(store_root))
    if history:
        settings = replace(settings, history=replace(settings.history, **history))
    return settings


def tiny_configs(tmp: Path) -> tuple[Path, Path]:
    """Pretrain/train configs that state only what a fast test changes (tiny model, few steps)."""
    common = ("model:\n  params: {d_model: 16, n_heads: 2, n_layers: 1}\n"
              "trainer:\n  max_epochs: 1\n  limit_train_batches: 6\n  limit_val_batches: 3\n"
              "  progress_bar: false\n  tensorboard: false\n")
    pre, sup = tmp / "pretrain.yaml", tmp / "train.yaml"
    pre.write_text(f"base: {ROOT / 'configs' / 'pretrain.yaml'}\n{common}")
    sup.write_text(f"base: {ROOT / 'configs' / 'train.yaml'}\n{common}")
    return pre, sup


def tiny_graph_settings(db, tmp: Path, cutoffs, days, seeds, history_start: str | None = None):
    """Settings of a whole-graph run with tiny models over ``cutoffs`` and inference ``days``;
    ``history_start`` moves the first history period later (fewer partitions: the graph's cost in
    a test is mostly Dagster's per-partition events, not the rows)."""
    pre, sup = tiny_configs(tmp)
    settings = settings_for(db, tmp / "store", **({"start": history_start} if history_start else {}))
    return replace(settings,
                   training=replace(settings.training, pretrain_config=str(pre), train_config=str(sup),
                                    first_cutoff=cutoffs[0], seeds=tuple(seeds)),
                   inference=replace(settings.inference, first_day=days[0]),
                   demo=DemoSettings(cutoffs=tuple(cutoffs), inference_days=tuple(days)))


@pytest.fixture(scope="module")
def clean(tmp_path_factory, small_synth_db_path) -> dict:
    """What a clean first ``plusultra materialize`` of the small synthetic database stores."""
    from tests.pipeline.cli_runs import clean_store

    return clean_store(tmp_path_factory.mktemp("clean"), small_synth_db_path)
