"""A generated corpus of bad inputs through the ``plusultra`` CLI (its real entry point, in this
process): broken databases, configs, symbol names, paths, checkpoints and dates.

Every case asserts what a user must see and what must not happen: a non-zero exit status, exactly
one ``plusultra <command>: error:`` line on stderr naming the problem, no traceback (Dagster's
console logger prints one line per event too), the database's bytes unchanged, and nothing in
the store (`store_contents` ignores only the writer lock).
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd
import pytest
import torch

from plusultra_pipeline.cli import main
from plusultra_pipeline.settings import DEFAULT_CONFIG
from tests.core.data.bad_databases import DEFECTS, build_good, good_frames, write_database
from tests.pipeline.store_contents import store_contents


@dataclass(frozen=True)
class Case:
    """``build(tmp) -> (argv, database or None)``; ``expected`` must appear in the error line."""
    build: Callable[[Path], tuple[list[str], Path | None]]
    expected: str
    code: int = 2


def _materialize_db(builder) -> Callable:
    def build(tmp: Path):
        db = builder(tmp / "market.sqlite")
        return ["materialize", "--db", str(db)], db
    return build


def _frames_db(mutate: Callable[[dict], None]) -> Callable:
    def builder(path: Path) -> Path:
        frames = good_frames()
        mutate(frames)
        return write_database(path, frames, loose=("series",))
    return _materialize_db(builder)


def _text_close(frames):
    frames["series"] = frames["series"].astype({"close": object})
    frames["series"].loc[3, "close"] = "12,5"


def _no_tradable(frames):
    frames["assets"]["tradable"] = 0


def _empty_series(frames):
    frames["series"] = frames["series"].iloc[:0]


def _one_symbol(name: str) -> Callable:
    def mutate(frames):
        extra = pd.DataFrame([(name, "odd", "equity", None, "USD", None, 1, 0)], columns=frames["assets"].columns)
        frames["assets"] = pd.concat([frames["assets"], extra], ignore_index=True)
    return mutate


def _config(text: str, *, db: bool = True) -> Callable:
    """``materialize --config <file>`` with ``text`` on top of the shipped pipeline settings."""
    def build(tmp: Path):
        good = build_good(tmp / "market.sqlite")
        path = tmp / "pipeline.yaml"
        path.write_text(text.replace("{base}", str(DEFAULT_CONFIG)).replace("{tmp}", str(tmp)))
        return ["materialize", "--config", str(path), *(["--db", str(good)] if db else [])], good
    return build


def _path(make: Callable[[Path], Path]) -> Callable:
    def build(tmp: Path):
        return ["materialize", "--db", str(make(tmp))], None
    return build


def _empty_file(tmp: Path) -> Path:
    (tmp / "empty.sqlite").write_bytes(b"")
    return tmp / "empty.sqlite"


def _directory(tmp: Path) -> Path:
    (tmp / "dir.sqlite").mkdir()
    return tmp / "dir.sqlite"


def _truncated(tmp: Path) -> Path:
    good = build_good(tmp / "full.sqlite")
    data = good.read_bytes()
    (tmp / "cut.sqlite").write_bytes(data[: len(data) // 3])
    return tmp / "cut.sqlite"


def _checkpoint(damage: Callable[[Path, Path], None], day: str = "2000-06-01") -> Callable:
    """``infer`` with the session's tiny checkpoint copied and damaged by ``damage(weights, sidecar)``."""
    def build(tmp: Path, source: Path):
        weights = tmp / "model.pt"
        shutil.copyfile(source, weights)
        shutil.copyfile(source.with_suffix(".pt.json"), tmp / "model.pt.json")
        damage(weights, tmp / "model.pt.json")
        return ["infer", "--checkpoint", str(weights), "--date", day], None
    build.needs_checkpoint = True
    return build


def _garbage(weights, sidecar):
    weights.write_bytes(b"\x00not a torch file" * 10)


def _truncate_weights(weights, sidecar):
    weights.write_bytes(weights.read_bytes()[:200])


def _drop_sidecar(weights, sidecar):
    sidecar.unlink()


def _corrupt_sidecar(weights, sidecar):
    sidecar.write_text("{ not json")


def _sidecar_list(weights, sidecar):
    sidecar.write_text("[1, 2]")


def _swap_weights(weights, sidecar):
    state = torch.load(weights, weights_only=True)
    key = next(k for k, v in state.items() if v.is_floating_point())
    state[key] = state[key] + 1.0
    torch.save(state, weights)


def _resign(weights, sidecar):
    """Record the new weights' digest in the sidecar, as a careful forger would."""
    import json

    from plusultra_core.training.checkpoints import WEIGHTS_HASH_KEY

    meta = json.loads(sidecar.read_text())
    meta[WEIGHTS_HASH_KEY] = hashlib.sha256(weights.read_bytes()).hexdigest()
    sidecar.write_text(json.dumps(meta))


def _pickled_object(weights, sidecar):
    torch.save({"w": torch.zeros(1), "code": Case}, weights)  # a class: only full unpickling loads it
    _resign(weights, sidecar)


def _non_tensor_state(weights, sidecar):
    torch.save({"w": torch.zeros(1), "epoch": 3}, weights)
    _resign(weights, sidecar)


def _nothing(weights, sidecar):
    pass


CASES: dict[str, Case] = {
    # --- databases: every defect of the shared corpus, through `materialize`
    **{f"db_{name}": Case(_materialize_db(builder), (expected[2].split("(")[0] if isinstance(expected, tuple) else expected))
       for name, (builder, expected) in DEFECTS.items()},
    "db_text_in_numeric_column": Case(_frames_db(_text_close), "column 'close' rowid 4 holds '12,5'"),
    "db_no_tradable_symbol": Case(_frames_db(_no_tradable), "no bars of a tradable symbol"),
    "db_no_bars": Case(_frames_db(_empty_series), "no bars of a tradable symbol"),
    # --- symbol names, one per database (the shared corpus has them all in one)
    **{f"symbol_{label}": Case(_frames_db(_one_symbol(name)), "usable_symbol")
       for label, name in {"too_long": "X" * 65, "dot_dot": "..", "slash": "A/B", "backslash": "A\\B",
                           "blank": "  ", "leading_dot": ".A", "nul": "A\x00B", "newline": "A\nB"}.items()},
    # --- paths
    "path_missing": Case(_path(lambda tmp: tmp / "nope.sqlite"), "nope.sqlite"),
    "path_empty_file": Case(_path(_empty_file), "empty.sqlite"),
    "path_directory": Case(_path(_directory), "dir.sqlite"),
    "path_truncated_database": Case(_path(_truncated), "cut.sqlite"),
    # --- configs
    "config_missing_file": Case(lambda tmp: (["materialize", "--config", str(tmp / "none.yaml")], None), "none.yaml"),
    "config_not_yaml": Case(_config("history: [unclosed\n"), "not valid YAML"),
    "config_top_level_list": Case(_config("- a\n- b\n"), "expected a mapping at top level"),
    "config_missing_base": Case(_config("base: {tmp}/gone.yaml\n"), "gone.yaml"),
    "config_unknown_key": Case(_config("base: {base}\nhistroy: {period: year}\n"), "'histroy'"),
    "config_unknown_nested_key": Case(_config("base: {base}\ntraining: {max_epoch: 3}\n"), "'max_epoch'"),
    "config_wrong_type_ratio": Case(_config("base: {base}\nfeatures: {max_nan_ratio: high}\n"), "features.max_nan_ratio"),
    "config_wrong_type_epochs": Case(_config("base: {base}\ntraining: {max_epochs: three}\n"), "training.max_epochs"),
    "config_section_not_mapping": Case(_config("base: {base}\ntraining: 5\n"), "TrainingSettings"),
    "config_bad_cutoff_date": Case(_config("base: {base}\ntraining: {first_cutoff: 2018-02-30}\n"), "training.first_cutoff"),
    "config_bad_history_start": Case(_config("base: {base}\nhistory: {start: 86}\n"), "history.start"),
    "config_bad_period": Case(_config("base: {base}\nhistory: {period: decade}\n"), "history.period"),
    "config_bad_cadence": Case(_config("base: {base}\ntraining: {cadence: hourly}\n"), "training.cadence"),
    "config_no_seeds": Case(_config("base: {base}\ntraining: {seeds: []}\n"), "training.seeds"),
    "config_negative_cost": Case(_config("base: {base}\nevaluation: {cost_bps: -1}\n"), "evaluation.cost_bps"),
    "config_bad_significance": Case(_config("base: {base}\nevaluation: {significance: 0.7}\n"), "evaluation.significance"),
    "config_empty_feature_list": Case(_config("base: {base}\nfeatures: {names: []}\n"), "features.names"),
    "config_unknown_feature": Case(_config("base: {base}\nfeatures: {names: [no_such_feature]}\n"), "no_such_feature"),
    "config_reversed_demo_cutoffs": Case(_config("base: {base}\ndemo: {cutoffs: [2018-04-01, 2018-01-01]}\n"), "demo.cutoffs"),
    # --- checkpoints and dates, through `infer`
    "checkpoint_missing": Case(lambda tmp: (["infer", "--checkpoint", str(tmp / "nope.pt"), "--date", "2000-06-01"], None),
                               "checkpoint not found"),
    "checkpoint_garbage": Case(_checkpoint(_garbage), "model.pt"),
    "checkpoint_truncated": Case(_checkpoint(_truncate_weights), "model.pt"),
    "checkpoint_sidecar_missing": Case(_checkpoint(_drop_sidecar), "sidecar missing"),
    "checkpoint_sidecar_corrupt": Case(_checkpoint(_corrupt_sidecar), "sidecar is corrupt"),
    "checkpoint_sidecar_not_object": Case(_checkpoint(_sidecar_list), "expected a JSON object"),
    "checkpoint_weights_swapped": Case(_checkpoint(_swap_weights), "do not match sidecar"),
    "checkpoint_pickled_code": Case(_checkpoint(_pickled_object), "weights_only"),
    "checkpoint_non_tensor_value": Case(_checkpoint(_non_tensor_state), "not a tensor state dict"),
    "date_impossible": Case(_checkpoint(_nothing, day="2000-02-30"), "2000-02-30"),
    "date_not_a_date": Case(_checkpoint(_nothing, day="yesterday"), "yesterday"),
}


def _sha(path: Path | None) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path is not None and path.is_file() else None


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, small_synth_db_path) -> Path:
    from tests.core.inference.conftest import train_tiny

    return Path(train_tiny(tmp_path_factory.mktemp("ckpt"), small_synth_db_path).path)


def test_the_corpus_is_large_enough():
    assert len(CASES) >= 40


@pytest.mark.parametrize("name", CASES)
def test_bad_input_gets_one_line_and_changes_nothing(name, tmp_path, monkeypatch, capsys, request):
    case = CASES[name]
    home = tmp_path / "home"
    for key in ("PLUSULTRA_CONFIG", "PLUSULTRA_DB"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("PLUSULTRA_HOME", str(home))
    monkeypatch.setenv("DAGSTER_HOME", str(home / "dagster_home"))
    if getattr(case.build, "needs_checkpoint", False):
        argv, db = case.build(tmp_path, request.getfixturevalue("checkpoint"))
    else:
        argv, db = case.build(tmp_path)
    before = _sha(db)
    code = main(argv)
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("plusultra ")]
    assert code == case.code, err
    assert "Traceback" not in err and "Stack Trace" not in err, err
    assert len(errors) == 1 and errors[0].startswith(f"plusultra {argv[0]}: error: "), err
    assert case.expected in errors[0], errors[0]
    assert _sha(db) == before
    store = home / "store"
    assert not store.exists() or store_contents(store) == {}, store_contents(store)
