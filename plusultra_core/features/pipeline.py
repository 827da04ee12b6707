"""`FeaturePipeline`: select features, order them by dependency, compute them on a panel.

``transform_panel`` pivots the long panel once into wide ``[L, S]`` matrices (`WideContext`),
runs each feature function on all symbols at once in dependency order, and stacks the results
back onto the panel's own index. Features whose inputs are missing from the panel are skipped
with one structured log record each (or, with ``strict=True``, rejected up front).
"""

from __future__ import annotations

import logging
from typing import Iterable

import numpy as np
import pandas as pd

from plusultra_core.errors import ConfigError
from plusultra_core.features.context import WideContext
from plusultra_core.features.registry import DEFAULT_REGISTRY, FeatureRegistry, is_raw_column
from plusultra_core.features.spec import FeatureSpec

log = logging.getLogger("plusultra.features")


class FeaturePipeline:
    """Compute a selection of registered features on a long ``(timestamp, symbol)`` panel.

    Args:
        names: feature names to output (``None`` with ``tags=None``: every feature).
        tags: output also every feature carrying one of these tags.
        registry: where features are looked up.
        strict: raise `ConfigError` instead of skipping features whose inputs are missing.

    Dependencies that are features themselves are computed as needed but only selected
    features become output columns. After ``transform_panel``, ``feature_names`` lists the
    columns actually produced and ``skipped`` maps each skipped feature to its missing columns.
    """

    def __init__(self, names: Iterable[str] | None = None, tags: Iterable[str] | None = None,
                 registry: FeatureRegistry = DEFAULT_REGISTRY, strict: bool = False):
        self.registry = registry
        self.strict = strict
        self.selected: list[FeatureSpec] = registry.select(names, tags)
        self.order: list[FeatureSpec] = _topological(self.selected, registry)
        self.feature_names: list[str] = [s.name for s in self.selected]
        self.skipped: dict[str, list[str]] = {}

    @property
    def max_lookback(self) -> int:
        """Largest lookback (rows of raw history before ``t``) among the features computed."""
        return max((s.lookback for s in self.order), default=0)

    def describe(self) -> str:
        """Markdown table of the selected features (see `FeatureRegistry.describe`)."""
        return self.registry.describe(self.feature_names)

    def missing_inputs(self, columns: Iterable[str]) -> dict[str, list[str]]:
        """Selected features that cannot be computed from ``columns`` -> their missing columns."""
        missing = self._missing_all(columns)
        return {s.name: missing[s.name] for s in self.selected if s.name in missing}

    def _missing_all(self, columns: Iterable[str]) -> dict[str, list[str]]:
        """Like `missing_inputs`, for every feature computed (hidden dependencies included)."""
        columns = set(columns)
        missing: dict[str, list[str]] = {}
        for spec in self.order:  # dependencies first, so their verdict is known
            miss: list[str] = []
            for dep in spec.depends_on:
                if is_raw_column(dep) or dep not in self.registry:
                    if dep not in columns:
                        miss.append(dep)
                else:
                    miss.extend(m for m in missing.get(dep, []) if m not in miss)
            if miss:
                missing[spec.name] = miss
        return missing

    def transform_panel(self, panel: pd.DataFrame) -> pd.DataFrame:
        """Features for every row of ``panel``: same index, one float64 column per feature.

        Raises `DataValidationError` if the index is not unique ``(timestamp, symbol)`` pairs
        and, in strict mode, `ConfigError` naming every feature with missing input columns.
        """
        self.skipped = self.missing_inputs(panel.columns)
        if self.skipped and self.strict:
            detail = "; ".join(f"{n} needs {', '.join(m)}" for n, m in self.skipped.items())
            raise ConfigError(f"feature inputs missing from the panel: {detail}")
        for name, miss in self.skipped.items():
            log.warning("feature %s skipped: missing input column(s) %s", name, ", ".join(miss),
                        extra={"feature": name, "missing": list(miss)})
        outputs = [s.name for s in self.selected if s.name not in self.skipped]
        self.feature_names = outputs
        if panel.empty:
            return pd.DataFrame({n: np.zeros(0) for n in outputs}, index=panel.index)

        ctx = WideContext(panel)
        blocked = set(self._missing_all(panel.columns))  # hidden dependencies included
        runnable = [s for s in self.order if s.name not in blocked]
        last_use = _last_use(runnable)
        # one [N, F] block filled column by column -> a DataFrame without re-consolidation
        result = np.empty((len(panel), len(outputs)))
        column_of = {name: j for j, name in enumerate(outputs)}
        for i, spec in enumerate(runnable):
            values = np.asarray(spec.fn(ctx), dtype=np.float64)
            if values.shape != ctx.shape:
                raise ValueError(f"feature {spec.name!r} returned shape {values.shape}, "
                                 f"expected {ctx.shape}")
            ctx.put(spec.name, values)
            if spec.name in column_of:
                result[:, column_of[spec.name]] = ctx.gather(values)  # [L, S] -> [N]
            for dep in spec.depends_on + (spec.name,):            # free what nobody reads later
                if last_use.get(dep, -1) <= i and dep not in panel.columns:
                    ctx.drop(dep)
        return pd.DataFrame(result, index=panel.index, columns=outputs, copy=False)


def _last_use(specs: list[FeatureSpec]) -> dict[str, int]:
    """Index of the last spec that reads each name (a feature's own index if none reads it)."""
    last: dict[str, int] = {}
    for i, spec in enumerate(specs):
        last[spec.name] = max(last.get(spec.name, i), i)
        for dep in spec.depends_on:
            last[dep] = i
    return last


def _topological(selected: list[FeatureSpec], registry: FeatureRegistry) -> list[FeatureSpec]:
    """Selected features and their feature dependencies, each after what it depends on."""
    order: list[FeatureSpec] = []
    state: dict[str, str] = {}

    def visit(spec: FeatureSpec, path: tuple[str, ...]) -> None:
        if state.get(spec.name) == "done":
            return
        if state.get(spec.name) == "active":
            raise ConfigError(f"feature dependency cycle: {' -> '.join(path + (spec.name,))}")
        state[spec.name] = "active"
        for dep in spec.depends_on:
            if not is_raw_column(dep):
                if dep not in registry:
                    raise ConfigError(f"feature {spec.name!r} depends on {dep!r}, which is "
                                      f"neither a raw column nor a registered feature")
                visit(registry.get(dep), path + (spec.name,))
        state[spec.name] = "done"
        order.append(spec)

    for spec in selected:
        visit(spec, ())
    return order
