"""`load_config` checks every value against its field's annotation and names file and key."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from plusultra_core.config import load_config
from plusultra_core.errors import ConfigError


@dataclass(frozen=True)
class Inner:
    rate: float = 0.1
    names: tuple[str, ...] = ("a",)


@dataclass(frozen=True)
class Outer:
    epochs: int = 3
    label: str | None = None
    flag: bool = False
    inner: Inner = field(default_factory=Inner)


def test_good_values_pass_and_lists_become_tuples(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("epochs: 5\nlabel: x\nflag: true\ninner: {rate: 1, names: [b, c]}\n")
    cfg = load_config(Outer, path)
    assert cfg == Outer(5, "x", True, Inner(1, ("b", "c")))


@pytest.mark.parametrize("text, message", [
    ("epochs: fast", "c.yaml: epochs: expected an integer, got 'fast' (str)"),
    ("epochs: 2.5", "c.yaml: epochs: expected an integer, got 2.5 (float)"),
    ("epochs: true", "c.yaml: epochs: expected an integer, got True (bool)"),
    ("flag: 1", "c.yaml: flag: expected true or false, got 1 (int)"),
    ("label: 7", "c.yaml: label: expected a string, got 7 (int)"),
    ("inner: {rate: high}", "c.yaml: inner.rate: expected a number, got 'high' (str)"),
    ("inner: {names: b}", "c.yaml: inner.names: expected a list, got 'b' (str)"),
    ("inner: {names: [b, 3]}", "c.yaml: inner.names[1]: expected a string, got 3 (int)"),
    ("inner: 3", "c.yaml: inner: expected a mapping for Inner, got int"),
])
def test_wrong_types_name_the_file_and_the_key(tmp_path, text, message):
    path = tmp_path / "c.yaml"
    path.write_text(text + "\n")
    with pytest.raises(ConfigError) as info:
        load_config(Outer, path)
    assert str(info.value) == f"{tmp_path}/{message}"


@pytest.mark.parametrize("section, values, key", [
    ("training", {"first_cutoff": "2018-13-01"}, "training.first_cutoff"),
    ("training", {"first_cutoff": "2018/01/01"}, "training.first_cutoff"),
    ("inference", {"first_day": "yesterday"}, "inference.first_day"),
    ("inference", {"schedule_hour_utc": 25}, "inference.schedule_hour_utc"),
    ("history", {"start": "19x6"}, "history.start"),
    ("history", {"period": "quarter", "start": "2003-02"}, "history.start"),
    ("demo", {"cutoffs": ["2018-04-01", "2018-01-01"]}, "demo.cutoffs"),
    ("demo", {"inference_days": ["2018-01-02", "2018-02-30"]}, "demo.inference_days"),
])
def test_bad_dates_in_pipeline_settings_name_the_key(tmp_path, section, values, key):
    from plusultra_pipeline.settings import load_settings

    path = tmp_path / "pipeline.yaml"
    path.write_text(f"base: {__import__('plusultra_pipeline.settings').settings.DEFAULT_CONFIG}\n"
                    + "\n".join([f"{section}:"] + [f"  {k}: {v!r}".replace("'", '"') for k, v in values.items()]) + "\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    assert str(info.value).startswith(str(path)) and key in str(info.value)
