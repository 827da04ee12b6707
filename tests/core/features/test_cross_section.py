"""Cross-sectional features over a universe panel: a subset of symbols gets the values it would get
computed together with every symbol, whatever subset (shard) it is computed in."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from plusultra_core.errors import ConfigError, DataValidationError
from plusultra_core.features import DEFAULT_REGISTRY, FeaturePipeline, FeatureRegistry

from .panels import random_panel

XS = [n for n in DEFAULT_REGISTRY.names if DEFAULT_REGISTRY.get(n).cross_sectional]


@pytest.fixture(scope="module")
def panel():
    return random_panel(n_symbols=5, n_days=260, seed=11)


def _rows_of(panel, symbols):
    return panel[panel.index.get_level_values("symbol").isin(symbols)]


def test_the_rank_family_is_flagged_and_reads_close_and_volume():
    assert XS and all(n.startswith("xs_rank_") for n in XS)
    assert all(DEFAULT_REGISTRY.get(n).family == "cross_sectional" for n in XS)
    pipe = FeaturePipeline()
    assert pipe.cross_sectional == XS                    # nothing else depends on a rank
    assert pipe.universe_columns == ["close", "volume"]
    assert FeaturePipeline(names=["rsi_14"]).cross_sectional == []


@pytest.mark.parametrize("subset", [["SYM0"], ["SYM1", "SYM3"], ["SYM4", "SYM2", "SYM0"]])
def test_subset_with_universe_equals_the_whole_panel(panel, subset):
    whole = FeaturePipeline().transform_panel(panel)
    part = _rows_of(panel, subset)
    pipe = FeaturePipeline()
    got = pipe.transform_panel(part, universe=panel[["close", "volume"]])  # ranks need only these
    assert got.index.equals(part.index) and list(got.columns) == DEFAULT_REGISTRY.names
    assert pipe.skipped == {}
    # the same bytes, also for a symbol computed alone (`WideContext.MIN_COLUMNS`)
    pd.testing.assert_frame_equal(got, whole.loc[part.index], check_exact=True)
    # without the universe, the subset ranks among itself: a different (wrong) value
    alone = FeaturePipeline(names=XS).transform_panel(part)
    assert not np.allclose(alone[XS].to_numpy(), whole.loc[part.index, XS].to_numpy(), equal_nan=True)


def test_values_do_not_depend_on_how_symbols_are_grouped(panel):
    """Disjoint groups computed apart (the feature stage's chunks), then joined, equal one
    computation of everything, byte for byte; the ranks computed once on the universe serve
    every group."""
    whole = FeaturePipeline().transform_panel(panel)
    groups = [["SYM0", "SYM2"], ["SYM1", "SYM3"], ["SYM4"]]
    pipe = FeaturePipeline()
    universe = pipe.universe_features(panel[["close", "volume"]])
    assert list(universe.grids) == XS and list(universe.symbols) == [f"SYM{i}" for i in range(5)]
    in_chunks = pipe.universe_features(lambda: (_rows_of(panel, g)[["close", "volume"]] for g in groups))
    for ranked_over in (panel, universe, in_chunks):
        joined = pd.concat([pipe.transform_panel(_rows_of(panel, g), universe=ranked_over) for g in groups])
        pd.testing.assert_frame_equal(joined.loc[panel.index], whole, check_exact=True)


def test_rows_missing_from_the_universe_are_an_error(panel):
    part = _rows_of(panel, ["SYM0"])
    with pytest.raises(DataValidationError, match="not in the universe") as info:
        FeaturePipeline(names=["xs_rank_mom_20"]).transform_panel(part, universe=_rows_of(panel, ["SYM1"]))
    assert info.value.check == "panel_in_universe"


def test_universe_is_ignored_without_cross_sectional_features(panel):
    part = _rows_of(panel, ["SYM1"])
    pipe = FeaturePipeline(names=["rsi_14", "mom_20"])
    got = pipe.transform_panel(part, universe=panel.iloc[:0])   # not even read
    pd.testing.assert_frame_equal(got, pipe.transform_panel(part))


def test_cross_sectional_inputs_are_checked_on_the_universe(panel):
    part = _rows_of(panel, ["SYM0", "SYM1"])
    pipe = FeaturePipeline(names=["xs_rank_logvol_z_20", "xs_rank_mom_20", "logvol_z_20"])
    got = pipe.transform_panel(part, universe=panel[["close"]])
    assert pipe.skipped == {"xs_rank_logvol_z_20": ["volume"]}   # the panel has volume, the universe not
    assert list(got.columns) == ["logvol_z_20", "xs_rank_mom_20"]   # registry order
    with pytest.raises(ConfigError, match="xs_rank_logvol_z_20 needs volume"):
        FeaturePipeline(names=["xs_rank_logvol_z_20"], strict=True).transform_panel(part, universe=panel[["close"]])


def test_a_feature_reading_a_cross_sectional_one_is_cross_sectional_too(panel):
    reg = FeatureRegistry()

    @reg.register(name="ret", depends_on=["close"], lookback=1, tags=["t"])
    def ret(ctx):
        close = ctx["close"]
        out = np.full(ctx.shape, np.nan)
        out[1:] = close[1:] / close[:-1] - 1
        return out

    @reg.register(name="demeaned", depends_on=["ret"], lookback=1, tags=["t"], cross_sectional=True)
    def demeaned(ctx):
        grid = ctx.to_grid(ctx["ret"])
        finite = np.isfinite(grid)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(finite, grid, 0.0).sum(axis=1, keepdims=True) / finite.sum(axis=1, keepdims=True)
        return ctx.from_grid(grid - mean)

    @reg.register(name="demeaned_sq", depends_on=["demeaned"], lookback=1, tags=["t"])
    def demeaned_sq(ctx):
        return ctx["demeaned"] ** 2

    pipe = FeaturePipeline(names=["ret", "demeaned_sq"], registry=reg)
    assert pipe.cross_sectional == ["demeaned", "demeaned_sq"]
    whole = pipe.transform_panel(panel)
    part = _rows_of(panel, ["SYM3"])
    got = pipe.transform_panel(part, universe=panel)
    pd.testing.assert_frame_equal(got, whole.loc[part.index], check_exact=True)


def test_feature_frame_reads_the_universe_from_the_store(tmp_path, panel):
    """`history.feature_frame`: a run over one shard ranks against every tradable symbol stored
    in its window, leaves non-tradable ones out, and refuses a window with a missing partition."""
    from plusultra_core.data.store import ParquetStore
    from plusultra_core.errors import PartitionKeyError
    from plusultra_core.history import feature_frame, split_partitions, to_store_frame

    shard_of = {"SYM0": "a", "SYM1": "a", "SYM2": "b", "SYM3": "b", "SYM4": "c"}
    store = ParquetStore(tmp_path)
    parts = split_partitions(panel, shard_of, "year")
    for ref, frame in parts.items():
        store.write("bars", ref.as_store_key(), to_store_frame(frame))
    upstream = sorted(parts, key=lambda r: (r.period, r.shard))
    refs = [r for r in upstream if r.shard == "b"]
    pipe = FeaturePipeline(names=["mom_20", *XS])
    tradable = set(shard_of) - {"SYM4"}                     # e.g. no longer tradable
    got, read = feature_frame(pipe, store, "bars", refs, upstream, tradable, with_data=set(parts))
    assert (read.partitions, read.universe_partitions, read.universe_symbols) == (len(refs), len(upstream), 4)
    universe = panel[panel.index.get_level_values("symbol").isin(list(tradable))]
    expected = FeaturePipeline(names=["mom_20", *XS]).transform_panel(universe)
    own = expected.index.get_level_values("symbol").isin(["SYM2", "SYM3"])
    pd.testing.assert_frame_equal(got, expected[own], check_exact=True)
    # a partition with source rows missing from the store is an error, not a silent gap
    shutil.rmtree(store.partition_dir("bars", upstream[0].as_store_key()))
    with pytest.raises(PartitionKeyError, match=f"{upstream[0].period}\\|{upstream[0].shard}"):
        feature_frame(pipe, store, "bars", refs, upstream, tradable, with_data=set(parts))


def test_rank_blocks_of_rows_give_the_same_bytes(monkeypatch):
    from plusultra_core.features.families import cross_section

    rng = np.random.default_rng(3)
    grid = np.round(rng.normal(size=(50, 9)), 1)             # ties within rows
    grid[rng.random(grid.shape) < 0.2] = np.nan
    whole = cross_section.cross_sectional_rank(grid)
    monkeypatch.setattr(cross_section, "RANK_BLOCK_ROWS", 7)
    np.testing.assert_array_equal(cross_section.cross_sectional_rank(grid), whole)
    assert np.nanmin(whole) == 0.0 and np.nanmax(whole) == 1.0
