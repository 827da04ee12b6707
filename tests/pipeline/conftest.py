"""Fixtures for pipeline tests: settings pointing at a tmp store and a test Dagster instance."""

from __future__ import annotations

from dataclasses import replace

import pytest
from dagster import instance_for_test

from plusultra_pipeline.settings import load_settings


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
