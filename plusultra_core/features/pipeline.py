"""`FeaturePipeline`: select features, order them by dependency, compute them on a panel.

``transform_panel`` pivots the long panel once into wide ``[L, S]`` matrices (`WideContext`),
runs each feature function on all symbols at once in dependency order, and stacks the results
back onto the panel's own index. Features whose inputs are missing from the panel are skipped
with one structured log record each (or, with ``strict=True``, rejected up front).

Cross-sectional features (ranks across symbols) are the only ones whose value depends on the
other symbols in the panel. ``transform_panel(panel, universe=...)`` computes them over the
universe panel and everything else over ``panel``, so callers that compute a subset of symbols
(a shard of the feature stage, the agent asked for a few symbols) get the same values as a
computation over all symbols at once. ``universe_features(universe)`` computes them once for
callers that transform many panels of one universe (the feature stage's chunks of shards).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Iterable

import numpy as np
import pandas as pd

from plusultra_core.errors import ConfigError, DataValidationError
from plusultra_core.features.context import MIN_COLUMNS, PANEL_TABLE, GridContext, WideContext
from plusultra_core.features.registry import DEFAULT_REGISTRY, FeatureRegistry, is_raw_column
from plusultra_core.features.spec import FeatureSpec

log = logging.getLogger("plusultra.features")


@dataclass(frozen=True)
class UniverseFeatures:
    """Cross-sectional features of a universe on its date grid (`FeaturePipeline.universe_features`)."""

    dates: pd.DatetimeIndex                           # [D] every date a universe symbol has a bar
    symbols: pd.Index                                 # [S] the universe's symbols, sorted
    grids: dict[str, np.ndarray]                      # feature -> [D, S] (NaN where no bar)
    present: np.ndarray                               # [D, S] bool: the universe has that bar
    missing: dict[str, list[str]] = field(default_factory=dict)  # features whose universe inputs are missing


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

    @property
    def cross_sectional(self) -> list[str]:
        """Features computed that compare symbols: flagged ``cross_sectional`` or reading one
        (directly or through a dependency), in dependency order."""
        xs: set[str] = set()
        for spec in self.order:
            if spec.cross_sectional or any(dep in xs for dep in spec.depends_on):
                xs.add(spec.name)
        return [s.name for s in self.order if s.name in xs]

    @property
    def universe_columns(self) -> list[str]:
        """Raw panel columns the cross-sectional features read (through their dependencies
        too): the columns a universe panel needs (e.g. ``close``, ``volume``)."""
        needed = self._closure(self.cross_sectional)
        return sorted({dep for s in self.order if s.name in needed for dep in s.depends_on
                       if is_raw_column(dep) or dep not in self.registry})

    def _closure(self, names: Iterable[str], stop: Iterable[str] = ()) -> set[str]:
        """``names`` and the features they read, transitively, not looking past ``stop``."""
        stop, out, todo = set(stop), set(), list(names)
        while todo:
            name = todo.pop()
            if name in out or name not in self.registry:
                continue
            out.add(name)
            if name not in stop:
                todo.extend(self.registry.get(name).depends_on)
        return out

    def transform_panel(self, panel: pd.DataFrame,
                        universe: pd.DataFrame | UniverseFeatures | None = None) -> pd.DataFrame:
        """Features for every row of ``panel``: same index, one float64 column per feature.

        ``universe`` (optional) is a panel of every symbol the cross-sectional features compare
        across, over at least the same dates and history as ``panel`` and holding every row of
        it (only `universe_columns` are read from it), or its `universe_features`. With it, the
        cross-sectional features are computed on the universe and taken at ``panel``'s rows;
        every other feature is computed on ``panel`` alone. A symbol's values then do not
        depend on which other symbols ``panel`` holds. Without it, ``panel`` is the universe.

        Raises `DataValidationError` if an index is not unique ``(timestamp, symbol)`` pairs or
        ``panel`` has rows the universe lacks and, in strict mode, `ConfigError` naming every
        feature with missing input columns.
        """
        xs = set(self.cross_sectional) if universe is not None else set()
        missing = self._missing_all(panel.columns)
        if xs:  # cross-sectional features need their inputs in the universe, the rest in the panel
            if not isinstance(universe, UniverseFeatures):
                universe = self.universe_features(universe)
            missing = ({n: m for n, m in missing.items() if n not in xs}
                       | {n: m for n, m in universe.missing.items() if n in xs})
        self.skipped = {s.name: missing[s.name] for s in self.selected if s.name in missing}
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

        given = self._on_universe(panel, universe, [n for n in outputs if n in xs]) if xs else {}
        ctx = WideContext(panel)
        needed = self._closure(outputs, stop=given)  # what the given features read is not needed here
        runnable = [s for s in self.order if s.name in needed and s.name not in missing]
        # one [N, F] block filled column by column -> a DataFrame without re-consolidation
        result = np.empty((len(panel), len(outputs)))
        self._run(ctx, runnable, {name: j for j, name in enumerate(outputs)}, result, given)
        return pd.DataFrame(result, index=panel.index, columns=outputs, copy=False)

    def universe_features(self, universe) -> UniverseFeatures:
        """The selected cross-sectional features of a universe, for `transform_panel` over panels
        of it: ``universe`` is a panel of every symbol they compare across, or a zero-argument
        callable returning its chunks (panels of disjoint symbols over the same window, read
        twice). Only `universe_columns` are read.

        What the cross-sectional features read (their other inputs, e.g. ``mom_20``) is computed
        chunk by chunk like any per-symbol feature and placed on the date grid of every symbol;
        the cross-sectional features then run once on that grid (`GridContext`: they use values
        at ``t`` only). Memory: one chunk plus the ``[dates, symbols]`` grids of their inputs.
        """
        chunks = (lambda: [universe]) if isinstance(universe, pd.DataFrame) else universe
        dates, symbols, columns = [], [], None
        for panel in chunks():                                            # pass 1: the grid's axes
            columns = list(panel.columns) if columns is None else columns
            dates.append(np.asarray(panel.index.levels[0][np.unique(panel.index.codes[0])], "datetime64[ns]"))
            symbols.append(np.asarray(panel.index.levels[1][np.unique(panel.index.codes[1])], dtype=object))
        missing = self._missing_all(columns or [])
        xs = set(self.cross_sectional)
        names = [s.name for s in self.selected if s.name in xs and s.name not in missing]
        xs_specs = [s for s in self.order if s.name in self._closure(names) and s.name in xs and s.name not in missing]
        inputs = sorted({d for s in xs_specs for d in s.depends_on if d not in xs})
        dates = pd.DatetimeIndex(np.unique(np.concatenate(dates)) if dates else [], dtype="datetime64[ns]")
        symbols = pd.Index(sorted(set(np.concatenate(symbols))) if symbols else [], dtype=object)
        shape = (len(dates), max(len(symbols), MIN_COLUMNS))
        grids = {name: np.full(shape, np.nan) for name in inputs}
        present = np.zeros(shape, dtype=bool)
        if names and len(dates):
            before = self._closure(inputs)
            specs = [s for s in self.order if s.name in before and s.name not in xs and s.name not in missing]
            for panel in chunks():                                        # pass 2: inputs, chunk by chunk
                if panel.empty:
                    continue
                ctx = WideContext(panel)
                rows, cols = _grid_positions(panel.index, dates, symbols)
                present[rows, cols] = True
                values = np.empty((len(panel), len(inputs)))
                self._run(ctx, specs, {n: j for j, n in enumerate(inputs)}, values)
                for j, name in enumerate(inputs):
                    grids[name][rows, cols] = ctx.gather(ctx[name]) if name in panel.columns else values[:, j]
            grid_ctx, last_use = GridContext(dates, symbols, grids), _last_use(xs_specs)
            del grids
            for i, spec in enumerate(xs_specs):
                grid_ctx.put(spec.name, np.asarray(spec.fn(grid_ctx), dtype=np.float64))
                for dep in spec.depends_on:  # free input grids nobody reads later
                    if last_use.get(dep, -1) <= i and dep not in names:
                        grid_ctx.drop(dep)
            grids = {name: grid_ctx[name] for name in names}
        return UniverseFeatures(dates, symbols, {n: grids.get(n, np.full(shape, np.nan)) for n in names},
                                present, missing)

    @staticmethod
    def _on_universe(panel: pd.DataFrame, universe: UniverseFeatures, names: list[str]) -> dict[str, np.ndarray]:
        """Features ``names`` of ``universe``, as ``[N]`` arrays in ``panel``'s row order."""
        if not names:
            return {}
        rows, cols = _grid_positions(panel.index, universe.dates, universe.symbols)
        found = (rows >= 0) & (cols >= 0)
        found[found] = universe.present[rows[found], cols[found]]
        if not found.all():
            cases = panel.index[~found][:5].to_frame(index=False)
            raise DataValidationError(
                f"feature input: {int((~found).sum())} panel rows are not in the universe panel "
                f"the cross-sectional features are computed on, first: "
                f"{list(map(tuple, cases.itertuples(index=False)))}",
                table=PANEL_TABLE, column="index", check="panel_in_universe", failure_cases=cases)
        return {name: universe.grids[name][rows, cols] for name in names}

    @staticmethod
    def _run(ctx: WideContext, specs: list[FeatureSpec], column_of: dict[str, int], result: np.ndarray,
             given: dict[str, np.ndarray] | None = None) -> None:
        """Compute ``specs`` in order on ``ctx``; write those in ``column_of`` into ``result``
        ``[N, F]``. Features in ``given`` (``[N]`` values) are taken as they are."""
        given = given or {}
        last_use = _last_use(specs)
        for i, spec in enumerate(specs):
            if spec.name in given:
                values = ctx.scatter(given[spec.name])
            else:
                values = np.asarray(spec.fn(ctx), dtype=np.float64)
                if values.shape != ctx.shape:
                    raise ValueError(f"feature {spec.name!r} returned shape {values.shape}, "
                                     f"expected {ctx.shape}")
            ctx.put(spec.name, values)
            if spec.name in column_of:
                result[:, column_of[spec.name]] = ctx.gather(values)  # [L, S] -> [N]
            for dep in spec.depends_on + (spec.name,):            # free what nobody reads later
                if last_use.get(dep, -1) <= i and dep not in ctx.panel.columns:
                    ctx.drop(dep)


def _grid_positions(index: pd.MultiIndex, dates: pd.DatetimeIndex, symbols: pd.Index) -> tuple[np.ndarray, np.ndarray]:
    """``[N]`` row (date) and column (symbol) of each ``(timestamp, symbol)`` of ``index`` in a
    grid over ``dates`` x ``symbols``; -1 where absent. One lookup per level value, not per row."""
    out = []
    for level, axis in ((0, dates), (1, symbols)):
        codes = np.asarray(index.codes[level])
        lookup = axis.get_indexer(index.levels[level]) if len(index.levels[level]) else np.zeros(0, np.int64)
        out.append(np.where(codes >= 0, lookup[np.maximum(codes, 0)] if len(lookup) else -1, -1))
    return out[0], out[1]


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
