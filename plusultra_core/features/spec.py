"""`FeatureSpec`: one causal feature — its name, how it is computed, and what it needs.

A feature function receives a `WideContext` and returns a wide ``[T, S]`` float64 matrix in the
context's layout (row ``i`` of column ``s`` is the ``i``-th bar of symbol ``s``). It reads its
inputs with ``ctx[name]`` — a raw panel column (``close``, ``volume``, ``ind_*``, ``mkt_*``) or
another feature — and must list every such name in ``depends_on``.

A *cross-sectional* feature compares symbols at the same timestamp (a rank, a demeaned value):
its value depends on which symbols are in the panel, so `FeaturePipeline.transform_panel`
computes it, and everything it reads, over a separate *universe* panel when one is given (every
tradable symbol), never over whatever subset of symbols happens to be computed together.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import numpy as np

if TYPE_CHECKING:
    from plusultra_core.features.context import WideContext

FeatureFn = Callable[["WideContext"], np.ndarray]


@dataclass(frozen=True)
class FeatureSpec:
    """A registered feature.

    Attributes:
        name: column name of the feature in the feature panel.
        fn: ``fn(ctx) -> ndarray [T, S]`` computing it for all symbols at once.
        depends_on: raw panel columns and/or other feature names that ``fn`` reads.
        lookback: rows of raw history *before* ``t`` the value at ``t`` needs, dependencies
            included (a 20-row std of ``ret_1d`` needs 20). Exact for finite windows; for
            recursive (exponential / Wilder) filters it is the warm-up after which the unknown
            earlier history weighs < ``kernels.WARMUP_TOL`` (1e-8, below float32 resolution), so
            any reader that supplies this many rows (the feature stage's partition mapping, the
            agent's read padding) gets the same float32 value whatever history came before.
        tags: families the feature belongs to (first tag = its family), used for selection.
        description: one line for the feature documentation.
        cross_sectional: True if the value at ``t`` compares symbols at ``t`` (see the module
            docstring); a feature depending on one is cross-sectional too (`FeaturePipeline`
            propagates it).
    """

    name: str
    fn: FeatureFn = field(repr=False, compare=False)
    depends_on: tuple[str, ...] = ()
    lookback: int = 0
    tags: tuple[str, ...] = ()
    description: str = ""
    cross_sectional: bool = False

    def __post_init__(self) -> None:
        # Accept lists from callers but store tuples so the spec stays hashable and immutable.
        object.__setattr__(self, "depends_on", tuple(self.depends_on))
        object.__setattr__(self, "tags", tuple(self.tags))

    @property
    def family(self) -> str:
        """The feature's family (its first tag)."""
        return self.tags[0] if self.tags else ""
