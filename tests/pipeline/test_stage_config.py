"""One config builder for `plusultra pretrain|train` and the graph: the same inputs give the same
config and hash, an architecture override uses that architecture's own parameters, settings
the pipeline owns cannot be restated in a stage file, and the hash covers what the run used."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from plusultra_core.config import config_hash, deep_merge, read_yaml, to_dict
from plusultra_core.errors import ConfigError
from plusultra_pipeline.cli import build_parser
from plusultra_pipeline.cli.train_commands import config_of
from plusultra_pipeline.code_versions import training_code_version
from plusultra_pipeline.settings import load_settings
from plusultra_pipeline.stage_config import cutoff_config, fold_of, stage_config

ROOT = Path(__file__).resolve().parents[2]
CUTOFF, FEATURES = "2018-01-01", ("ret_1d", "mom_5", "rsi_14")


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    for name in ("PLUSULTRA_CONFIG", "PLUSULTRA_DB", "PLUSULTRA_HOME"):
        monkeypatch.delenv(name, raising=False)


def settings_file(tmp_path, name="pipeline.yaml", **training) -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump({"base": str(ROOT / "configs" / "pipeline.yaml"),
                                    "database": str(tmp_path / "market.sqlite"),
                                    "store_root": str(tmp_path / "store"), "training": training}))
    return path


def stage_file(tmp_path, name: str, **changes) -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump({"base": str(ROOT / "configs" / "train.yaml"), **changes}))
    return path


def cli(*argv):
    return config_of(argv[0], build_parser().parse_args(list(argv)))


@pytest.mark.parametrize("architecture", [None, "temporal_fusion"])
def test_cli_and_graph_give_one_config_and_hash(tmp_path, architecture):
    training = {"max_epochs": 2, **({"architecture": architecture} if architecture else {})}
    path = settings_file(tmp_path, **training)
    settings = load_settings(path, environ={})
    graph = cutoff_config("train", settings, CUTOFF, 1, FEATURES)
    by_cli = cli("train", "--settings", str(path), "--seed", "1", "--out", graph.output_dir,
                 "--pretrained", graph.pretrained)
    fold = fold_of(settings, CUTOFF, FEATURES)
    # the graph adds its cutoff's split and its training set's features, nothing else
    cutoff_fields = {"data": {"train_end": fold.fit_end, "val_end": None, "feature_names": list(FEATURES),
                              "feature_tags": None}}
    assert to_dict(graph) == deep_merge(to_dict(by_cli), cutoff_fields)
    assert config_hash(graph) == config_hash(deep_merge(to_dict(by_cli), cutoff_fields))
    assert graph.loss.cost_bps == settings.evaluation.cost_bps and graph.data.purge_bars == settings.training.purge_bars
    assert by_cli.data.db_path == graph.data.db_path == str(tmp_path / "market.sqlite")
    assert graph.trainer.max_epochs == by_cli.trainer.max_epochs == 2


def test_an_architecture_override_starts_from_its_own_parameters(tmp_path):
    """train.yaml's temporal_hybrid params (n_layers) used to reach temporal_fusion in the graph."""
    settings = load_settings(settings_file(tmp_path, architecture="temporal_fusion"), environ={})
    graph = cutoff_config("pretrain", settings, CUTOFF, 0, FEATURES)
    flag = cli("pretrain", "--settings", str(settings_file(tmp_path, "plain.yaml")), "--architecture", "temporal_fusion")
    defaults = read_yaml(ROOT / "configs" / "models" / "temporal_fusion.yaml")
    for cfg in (graph, flag):
        assert cfg.model.architecture == "temporal_fusion" and "n_layers" not in cfg.model.params
        assert {k: cfg.model.params[k] for k in defaults} == defaults
    assert graph.model == flag.model
    # and a pretraining run and its supervised run get the same backbone
    assert cutoff_config("train", settings, CUTOFF, 0, FEATURES).model == graph.model


def test_the_hash_covers_what_the_graph_used(tmp_path):
    settings = load_settings(settings_file(tmp_path), environ={})
    a = stage_file(tmp_path, "a.yaml", data={"feature_names": ["ret_1d"], "train_end": 0.5, "val_end": 0.6})
    b = stage_file(tmp_path, "b.yaml", data={"feature_names": ["mom_5", "rsi_14"]})

    def graph(stage, s=settings):
        from dataclasses import replace
        s = replace(s, training=replace(s.training, train_config=str(stage)))
        return cutoff_config("train", s, CUTOFF, 0, FEATURES), training_code_version(s, "train")

    (cfg_a, version_a), (cfg_b, version_b) = graph(a), graph(b)
    # the stage files' feature lists and fractions are plusultra train's: the graph did not use them
    assert cfg_a == cfg_b and config_hash(cfg_a) == config_hash(cfg_b) and version_a == version_b
    assert list(cfg_a.data.feature_names) == list(FEATURES)
    # what the graph does use changes both
    dearer = load_settings(settings_file(tmp_path, "dearer.yaml"), environ={})
    from dataclasses import replace
    dearer = replace(dearer, evaluation=replace(dearer.evaluation, cost_bps=20.0))
    cfg_c, version_c = graph(a, dearer)
    assert cfg_c.loss.cost_bps == 20.0 and config_hash(cfg_c) != config_hash(cfg_a) and version_c != version_a
    # the backbone's parameters are in the config itself, so the hash moves with the model
    assert cfg_a.model.params["d_model"] == 32 and "patch_len" in cfg_a.model.params


@pytest.mark.parametrize("changes, owner", [
    ({"loss": {"cost_bps": 7.0}}, "evaluation.cost_bps"),
    ({"data": {"purge_bars": 12}}, "training.purge_bars"),
    ({"data": {"recency_halflife_days": 300}}, "training.recency_halflife_years"),
    ({"data": {"db_path": "x.sqlite"}}, "database"),
    ({"head": {"return_scale": 0.02}}, "loss.return_scale"),
])
def test_a_setting_stated_in_its_derived_place_is_refused(tmp_path, changes, owner):
    stage = stage_file(tmp_path, "bad.yaml", **changes)
    section, key = next(iter(changes)), next(iter(next(iter(changes.values()))))
    with pytest.raises(ConfigError, match=rf"bad.yaml: {section}.{key} is set by .*{owner}"):
        cli("train", "--settings", str(settings_file(tmp_path)), "--config", str(stage))


def test_return_scale_is_stated_once(tmp_path):
    stage = stage_file(tmp_path, "scale.yaml", loss={"return_scale": 0.02})
    cfg = cli("train", "--settings", str(settings_file(tmp_path)), "--config", str(stage))
    assert cfg.head.return_scale == cfg.loss.return_scale == 0.02


def test_what_the_graph_cannot_honour_is_refused_there_only(tmp_path):
    stage = stage_file(tmp_path, "msft.yaml", data={"symbols": ["MSFT"]})
    path = settings_file(tmp_path, train_config=str(stage))
    assert cli("train", "--settings", str(path)).data.symbols == ("MSFT",)
    with pytest.raises(ConfigError, match=r"msft.yaml: data.symbols is set by the graph .*plusultra train only"):
        cutoff_config("train", load_settings(path, environ={}), CUTOFF, 0, FEATURES)


def test_bad_overrides_name_what_is_wrong(tmp_path):
    path = settings_file(tmp_path, purge_bars=3)
    with pytest.raises(ConfigError, match=r"training.purge_bars \(3\) must be >= data.horizon \(5\)"):
        stage_config("train", load_settings(path, environ={}))
    with pytest.raises(ConfigError, match="unknown model.architecture 'tft'; known: temporal_hybrid"):
        cli("train", "--settings", str(settings_file(tmp_path)), "--architecture", "tft")


def test_ddp_is_for_plusultra_train_and_refused_in_a_graph_step(tmp_path):
    # Lightning would re-run the Dagster process per extra device; under torchrun every rank would
    # execute the whole step
    stage = stage_file(tmp_path, "ddp.yaml", trainer={"devices": 2, "strategy": "ddp"})
    path = settings_file(tmp_path, train_config=str(stage))
    trainer = cli("train", "--settings", str(path)).trainer
    assert (trainer.devices, trainer.strategy, trainer.num_nodes) == (2, "ddp", 1)
    with pytest.raises(ConfigError, match=r"ddp.yaml: trainer.strategy ddp \(devices 2 x 1 node\(s\)\) is for plusultra train"):
        cutoff_config("train", load_settings(path, environ={}), CUTOFF, 0, FEATURES)
