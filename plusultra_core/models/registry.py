"""One explicit registry: architecture name -> (config class, backbone class).

Entries are imported lazily so importing the registry is cheap and one broken backbone file does
not hide the others; config classes come from the torch-free `plusultra_core.models.configs`, so
building or validating a config (and the pipeline's code versions) never imports torch. Build with `build_backbone(name, params, n_features, horizon)`; the config
class is constructed with ``Config(**params)`` so an unknown key fails and names the key.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Mapping

from plusultra_core.config import from_dict, read_yaml
from plusultra_core.errors import ConfigError

# name -> (backbone module, config class in `configs`, backbone class)
REGISTRY: dict[str, tuple[str, str, str]] = {
    "temporal_hybrid": ("plusultra_core.models.temporal_hybrid", "TemporalBackboneConfig", "TemporalHybridBackbone"),
    "temporal_fusion": ("plusultra_core.models.temporal_fusion", "TemporalFusionConfig", "TemporalFusionBackbone"),
    "omni_mixture": ("plusultra_core.models.omni_mixture", "OmniMixtureConfig", "OmniMixtureBackbone"),
    "moe_transformer": ("plusultra_core.models.moe_transformer", "MoETransformerConfig", "MoETransformerBackbone"),
}

ARCHITECTURES = tuple(REGISTRY)
CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs" / "models"


def resolve(name: str) -> tuple[type, type]:
    """Return ``(ConfigClass, BackboneClass)`` for an architecture name (imports the backbone)."""
    cfg_cls = config_class(name)
    module_name, _, cls_name = REGISTRY[name]
    return cfg_cls, getattr(importlib.import_module(module_name), cls_name)


def config_class(name: str) -> type:
    """The config dataclass of an architecture name (torch-free)."""
    if name not in REGISTRY:
        raise ConfigError(f"unknown model.architecture '{name}'; known: {', '.join(ARCHITECTURES)}")
    from plusultra_core.models import configs

    return getattr(configs, REGISTRY[name][1])


def build_config(name: str, params: Mapping[str, Any] | None = None, where: str = "<mapping>"):
    """Config dataclass of ``name`` from ``params`` (unknown keys raise `ConfigError`)."""
    cfg_cls = config_class(name)
    return from_dict(cfg_cls, dict(params or {}), where)


def load_model_config(name: str, path: str | Path | None = None, overrides: Mapping[str, Any] | None = None):
    """Config of ``name`` from ``configs/models/<name>.yaml`` (or ``path``) plus ``overrides``."""
    path = Path(path) if path is not None else CONFIG_DIR / f"{name}.yaml"
    params = read_yaml(path)
    params.update(overrides or {})
    return build_config(name, params, str(path))


def build_backbone(name: str, cfg, n_features: int, horizon: int):
    """Instantiate backbone ``name`` with its config object for ``[B, T, n_features]`` inputs."""
    cfg_cls, cls = resolve(name)
    if not isinstance(cfg, cfg_cls):
        raise ConfigError(f"{name} expects {cfg_cls.__name__}, got {type(cfg).__name__}")
    return cls(cfg, n_features=n_features, horizon=horizon)
