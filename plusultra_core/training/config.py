"""Typed configuration of the training stages, loaded with `plusultra_core.config.load_config`.

`PretrainConfig` drives masked-reconstruction pretraining and `TrainConfig` the supervised
fine-tune. Both share `DataConfig` (which database / frame, which features, window geometry, the
time split and the block sampler), `ModelConfig` (architecture + backbone parameters),
`OptimConfig` and `TrainerConfig`. An unknown key anywhere raises `ConfigError` naming the key and
the file; invalid values raise in ``__post_init__`` and are re-raised as `ConfigError` by the
loader, so a bad config fails before any data is read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plusultra_core.head_config import HeadConfig
from plusultra_core.loss_config import LossConfig

PRECISIONS = ("32-true", "bf16-mixed", "16-mixed", "64-true")
# "auto": one process. "ddp": one process per device (and node), gradients all-reduced (gloo on
# CPU, NCCL on GPUs); launched by Lightning itself on one node or by torchrun across nodes.
STRATEGIES = ("auto", "ddp")
MASK_STRATEGIES = ("random", "span", "feature")
# pretraining objectives: masked reconstruction, TS2Vec-style contrast, or their weighted sum
OBJECTIVES = ("masked", "contrastive", "both")


def _as_tuple(value: Any, name: str) -> tuple[str, ...] | None:
    """YAML lists arrive as lists; normalise to a tuple of str (None stays None)."""
    if value is None:
        return None
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{name} must be a list of strings, got {type(value).__name__}")
    return tuple(str(v) for v in value)


def _selection(value: Any, name: str, noun: str) -> tuple[str, ...] | None:
    """A list that narrows a default (None: every symbol / feature). An empty one is an error: read
    as "nothing chosen" it used to fall back to the default, i.e. everything."""
    out = _as_tuple(value, name)
    if out == ():
        raise ValueError(f"{name} is empty: name at least one {noun} or remove the key")
    return out


def _check_split_point(value: Any, name: str) -> None:
    """A split point is a date string / timestamp or a fraction of the timeline in (0, 1)."""
    if value is None or isinstance(value, str):
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        # a YAML date (2015-01-01 unquoted) arrives as datetime.date: accept it
        if hasattr(value, "isoformat"):
            return
        raise ValueError(f"{name} must be a date string or a fraction in (0, 1), got {value!r}")
    if not 0.0 < float(value) < 1.0:
        raise ValueError(f"{name} as a fraction must lie in (0, 1), got {value!r}")


@dataclass
class DataConfig:
    """Where the windows come from and how they are cut and split.

    ``train_end`` / ``val_end`` are dates (inclusive) or fractions of the distinct timestamps;
    ``purge_bars`` (bars between a train target and a validation input, default = ``horizon``) is
    enforced by `plusultra_core.windows.time_split`. The train loader yields
    ``blocks_per_batch`` blocks of ``block_length`` time-consecutive windows of one symbol, so
    the loss can compute Sharpe and drawdown along time.
    """

    db_path: str = ".plusultra/demo.sqlite"
    symbols: tuple[str, ...] | None = None      # None = every tradable symbol
    start: str | None = None
    end: str | None = None
    feature_names: tuple[str, ...] | None = None
    feature_tags: tuple[str, ...] | None = None  # used when feature_names is None
    return_column: str = "ret_1d"
    context_length: int = 64
    horizon: int = 5
    stride: int = 1
    zscore: bool = False
    train_end: Any = 0.7
    val_end: Any = 0.85
    purge_bars: int | None = None
    block_length: int = 16
    blocks_per_batch: int = 4
    recency_halflife_days: float | None = None  # None: uniform blocks; else recent blocks drawn more often
    num_workers: int = 0

    def __post_init__(self):
        self.symbols = _selection(self.symbols, "data.symbols", "symbol")
        self.feature_names = _selection(self.feature_names, "data.feature_names", "feature")
        self.feature_tags = _selection(self.feature_tags, "data.feature_tags", "tag")
        for name in ("context_length", "horizon", "stride", "block_length", "blocks_per_batch"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"data.{name} must be a positive integer, got {value!r}")
        if self.purge_bars is not None and self.purge_bars < self.horizon:
            raise ValueError(f"data.purge_bars ({self.purge_bars}) must be >= data.horizon ({self.horizon}) "
                             "so no training target overlaps a validation window")
        if self.recency_halflife_days is not None and not (
                isinstance(self.recency_halflife_days, (int, float)) and not isinstance(self.recency_halflife_days, bool)
                and self.recency_halflife_days > 0):
            raise ValueError(f"data.recency_halflife_days must be a number > 0 or null, got {self.recency_halflife_days!r}")
        _check_split_point(self.train_end, "data.train_end")
        _check_split_point(self.val_end, "data.val_end")
        if (isinstance(self.train_end, float) and isinstance(self.val_end, float)
                and self.val_end <= self.train_end):
            raise ValueError(f"data.val_end ({self.val_end}) must be after data.train_end ({self.train_end})")


@dataclass
class ModelConfig:
    """Backbone choice: ``architecture`` from the registry, parameters from ``path`` (a YAML file,
    default ``configs/models/<architecture>.yaml`` when it exists) overridden by ``params``."""

    architecture: str = "temporal_hybrid"
    params: dict[str, Any] = field(default_factory=dict)
    path: str | None = None


@dataclass
class OptimConfig:
    """AdamW + linear warm-up + cosine annealing (step-wise). ``max_steps=None`` means "derive
    from the trainer's epochs × batches per epoch"; ``grad_clip`` is the global-norm clip value
    applied by the Lightning Trainer (0 or None disables it)."""

    lr: float = 1e-3
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    warmup_steps: int = 50
    max_steps: int | None = None
    min_lr_ratio: float = 0.1
    grad_clip: float | None = 1.0

    def __post_init__(self):
        self.betas = tuple(float(b) for b in self.betas)
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            raise ValueError(f"optim.betas must be two numbers in [0, 1), got {self.betas!r}")
        if not self.lr > 0:
            raise ValueError(f"optim.lr must be > 0, got {self.lr!r}")
        if self.weight_decay < 0 or self.warmup_steps < 0:
            raise ValueError("optim.weight_decay and optim.warmup_steps must be >= 0")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ValueError(f"optim.min_lr_ratio must lie in [0, 1], got {self.min_lr_ratio!r}")


@dataclass
class TrainerConfig:
    """Lightning Trainer settings. ``bf16-mixed`` works on CPU but this machine has no native
    bf16, so fp32 (``32-true``) is the default. ``seed`` + ``deterministic`` make CPU runs
    reproducible.

    ``devices`` × ``num_nodes`` processes train one model under ``strategy: ddp``; every rank
    reads its own ``1/world`` of each global batch of ``data.blocks_per_batch`` blocks (see
    `WindowDataModule`), so a config means the same optimisation on one process or many.
    """

    max_epochs: int = 10
    max_steps: int = -1
    precision: str = "32-true"
    accelerator: str = "cpu"
    devices: Any = 1                 # processes per node (CPU) or GPUs: a count, -1/"auto", or GPU ids [0, 1]
    strategy: str = "auto"
    num_nodes: int = 1
    seed: int = 0
    deterministic: bool = True
    early_stopping_patience: int | None = 3
    monitor: str = "val/loss"
    monitor_mode: str = "min"
    log_dir: str = "logs"
    log_every_n_steps: int = 10
    limit_train_batches: Any = None
    limit_val_batches: Any = None
    progress_bar: bool = True
    tensorboard: bool = True
    num_threads: int | None = None   # torch intra-op threads; 1 avoids oversubscription on busy CPUs

    def __post_init__(self):
        if self.precision not in PRECISIONS:
            raise ValueError(f"trainer.precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.accelerator not in ("cpu", "auto", "gpu", "cuda", "mps"):
            raise ValueError(f"trainer.accelerator must be 'cpu' or 'auto', got {self.accelerator!r}")
        if self.monitor_mode not in ("min", "max"):
            raise ValueError(f"trainer.monitor_mode must be 'min' or 'max', got {self.monitor_mode!r}")
        if self.max_epochs < 1:
            raise ValueError(f"trainer.max_epochs must be >= 1, got {self.max_epochs!r}")
        if self.num_threads is not None and self.num_threads < 1:
            raise ValueError(f"trainer.num_threads must be >= 1 or null, got {self.num_threads!r}")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"trainer.strategy must be one of {STRATEGIES}, got {self.strategy!r}")
        if isinstance(self.num_nodes, bool) or not isinstance(self.num_nodes, int) or self.num_nodes < 1:
            raise ValueError(f"trainer.num_nodes must be an integer >= 1, got {self.num_nodes!r}")
        count = device_count(self.devices)
        if self.strategy == "auto" and ((count is not None and count != 1) or self.num_nodes > 1):
            raise ValueError(f"trainer.devices={self.devices!r} x trainer.num_nodes={self.num_nodes} is more than one "
                             "process: set trainer.strategy: ddp")


def device_count(devices: Any) -> int | None:
    """Processes per node ``trainer.devices`` asks for (None: Lightning decides, for -1 / "auto")."""
    if devices in (-1, "auto"):
        return None
    if isinstance(devices, bool):
        raise ValueError(f"trainer.devices must be a count, -1, 'auto' or a list of GPU ids, got {devices!r}")
    if isinstance(devices, int) and devices >= 1:
        return devices
    if isinstance(devices, (list, tuple)) and devices and all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in devices) and len(set(devices)) == len(devices):
        return len(devices)
    raise ValueError(f"trainer.devices must be a count >= 1, -1, 'auto' or a list of distinct GPU ids, got {devices!r}")


@dataclass
class MaskingConfig:
    """Masked-reconstruction corruption. Each strategy in ``strategies`` adds masked cells:
    ``random`` masks single time steps with probability ``mask_ratio``, ``span`` masks contiguous
    runs of ``span_length`` steps covering about ``span_ratio`` of the window, ``feature`` masks a
    whole feature over the window with probability ``feature_mask_ratio``."""

    mask_ratio: float = 0.15
    span_length: int = 5
    span_ratio: float = 0.15
    feature_mask_ratio: float = 0.1
    strategies: tuple[str, ...] = MASK_STRATEGIES

    def __post_init__(self):
        self.strategies = _as_tuple(self.strategies, "masking.strategies") or ()
        unknown = sorted(set(self.strategies) - set(MASK_STRATEGIES))
        if unknown or not self.strategies:
            raise ValueError(f"masking.strategies must be a non-empty subset of {MASK_STRATEGIES}, "
                             f"got {self.strategies!r}")
        for name in ("mask_ratio", "span_ratio", "feature_mask_ratio"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"masking.{name} must lie in [0, 1), got {value!r}")
        if self.span_length < 1:
            raise ValueError(f"masking.span_length must be >= 1, got {self.span_length!r}")


def _check_share(value: Any, name: str, *, upper_open: bool = True) -> None:
    """A number in [0, 1) (or [0, 1] when ``upper_open`` is False), never a bool."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and (
        0.0 <= value < 1.0 if upper_open else 0.0 <= value <= 1.0)
    if not ok:
        raise ValueError(f"{name} must lie in [0, {'1)' if upper_open else '1]'}, got {value!r}")


@dataclass
class ContrastiveConfig:
    """TS2Vec-style hierarchical contrast (`plusultra_core.training.contrastive`).

    Two overlapping crops of each input window, the first reaching further into the past, are
    augmented independently (Gaussian ``jitter_std`` in z-score units, a per-sample per-feature
    scale ``1 + N(0, scale_std)``, whole time steps zeroed with probability ``mask_ratio``) and
    encoded; on their overlap, of at least ``min_overlap`` steps, an InfoNCE loss pulls the two
    embeddings of a step together against other windows at that step (instance contrast, weight
    ``alpha``) and other steps of that window (temporal contrast, ``1 - alpha``), at every level
    of a max-pool hierarchy over time. Temporal contrast starts at level ``temporal_unit``.
    ``weight`` scales this loss in ``objective: both`` (masked + weight x contrastive).
    """

    alpha: float = 0.5
    temporal_unit: int = 0
    min_overlap: int = 4
    jitter_std: float = 0.05
    scale_std: float = 0.1
    mask_ratio: float = 0.1
    weight: float = 1.0

    def __post_init__(self):
        _check_share(self.alpha, "contrastive.alpha", upper_open=False)
        _check_share(self.mask_ratio, "contrastive.mask_ratio")
        for name in ("temporal_unit", "min_overlap"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"contrastive.{name} must be an integer >= 0, got {value!r}")
        if self.min_overlap < 2:
            # a 1-step overlap has no temporal negatives and no hierarchy: nothing to contrast in time
            raise ValueError(f"contrastive.min_overlap must be >= 2, got {self.min_overlap!r}")
        for name in ("jitter_std", "scale_std"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"contrastive.{name} must be >= 0, got {getattr(self, name)!r}")
        if not self.weight > 0:
            raise ValueError(f"contrastive.weight must be > 0, got {self.weight!r}")


@dataclass
class PretrainConfig:
    """Self-supervised pretraining run: ``objective`` masked reconstruction (``masking``), TS2Vec
    contrast (``contrastive``) or both (masked + ``contrastive.weight`` x contrastive)."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    objective: str = "masked"
    masking: MaskingConfig = field(default_factory=MaskingConfig)
    contrastive: ContrastiveConfig = field(default_factory=ContrastiveConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    output_dir: str = ".plusultra/checkpoints/pretrain"

    def __post_init__(self):
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}; got {self.objective!r}")
        if self.objective != "masked" and self.contrastive.min_overlap > self.data.context_length:
            raise ValueError(f"contrastive.min_overlap ({self.contrastive.min_overlap}) exceeds data.context_length "
                             f"({self.data.context_length}): no two crops of a window can overlap that long")

    @property
    def objectives(self) -> tuple[str, ...]:
        """The losses this run sums: ``("masked",)``, ``("contrastive",)`` or both."""
        return ("masked", "contrastive") if self.objective == "both" else (self.objective,)


@dataclass
class TrainConfig:
    """Supervised trading run; ``pretrained`` is a pretraining checkpoint to warm-start the
    backbone from (by parameter name), or None for a cold start."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    head: HeadConfig = field(default_factory=HeadConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    pretrained: str | None = None
    aux_loss_weight: float = 1.0
    output_dir: str = ".plusultra/checkpoints/train"

    def __post_init__(self):
        # one return unit: the head scales its outputs by it and the loss divides by it
        if self.head.return_scale != self.loss.return_scale:
            raise ValueError(f"head.return_scale ({self.head.return_scale}) differs from loss.return_scale "
                             f"({self.loss.return_scale}); set loss.return_scale only")


def build_model_config(model: ModelConfig):
    """The backbone's config dataclass: YAML file (explicit ``path`` or the registry's default file
    when present) overridden by ``params``; unknown keys raise `ConfigError` naming them."""
    from plusultra_core.models import registry

    if model.path is not None:
        return registry.load_model_config(model.architecture, model.path, model.params)
    default = registry.CONFIG_DIR / f"{model.architecture}.yaml"
    if Path(default).is_file():
        return registry.load_model_config(model.architecture, None, model.params)
    return registry.build_config(model.architecture, model.params, "model.params")
