"""Selection, dependency resolution, missing-input handling and input checks of the pipeline."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from plusultra_core.errors import ConfigError, DataValidationError
from plusultra_core.features import DEFAULT_REGISTRY, FeaturePipeline, FeatureRegistry, FeatureSpec

from .panels import MKT_COLUMNS, random_panel, single_symbol


@pytest.fixture(scope="module")
def panel():
    return random_panel(n_symbols=3, n_days=300, seed=21)


def test_registry_has_the_required_families_and_ret_1d():
    assert len(DEFAULT_REGISTRY) >= 25
    assert {"returns", "momentum", "volatility", "range", "trend", "oscillator", "volume",
            "moments", "spectral", "calendar", "cross_sectional", "alternative"} <= set(DEFAULT_REGISTRY.tags)
    spec = DEFAULT_REGISTRY.get("ret_1d")
    assert spec.depends_on == ("close",) and spec.lookback == 1
    assert max(s.lookback for s in DEFAULT_REGISTRY) < 2 * 240  # two yearly periods of lookback


def test_output_is_float64_on_the_panel_index(panel):
    out = FeaturePipeline().transform_panel(panel)
    assert out.index.equals(panel.index)
    assert list(out.columns) == DEFAULT_REGISTRY.names
    assert (out.dtypes == np.float64).all()
    assert not np.isinf(out.to_numpy()).any()                 # NaN, never ±inf


def test_select_by_name_and_tag(panel):
    pipe = FeaturePipeline(names=["rsi_14", "ret_1d"], tags=["calendar"])
    out = pipe.transform_panel(panel)
    expected = ["ret_1d", "rsi_14"] + [n for n in DEFAULT_REGISTRY.names if n.startswith("cal_")]
    assert list(out.columns) == expected == pipe.feature_names  # registry order
    assert pipe.max_lookback == DEFAULT_REGISTRY.get("rsi_14").lookback
    assert "| `rsi_14` |" in pipe.describe() and "mom_20" not in pipe.describe()


def test_dependencies_are_computed_but_not_output(panel):
    pipe = FeaturePipeline(names=["vol_ratio_20_60"])
    assert [s.name for s in pipe.order] == ["ret_1d", "vol_std_20", "vol_std_60", "vol_ratio_20_60"]
    out = pipe.transform_panel(panel)
    assert list(out.columns) == ["vol_ratio_20_60"]
    full = FeaturePipeline().transform_panel(panel)
    np.testing.assert_array_equal(out["vol_ratio_20_60"], full["vol_ratio_20_60"])


def test_unknown_name_and_tag_errors_list_close_matches():
    with pytest.raises(ConfigError, match=r"unknown feature: 'rsi_41' \(did you mean 'rsi_14'"):
        FeaturePipeline(names=["rsi_41"])
    with pytest.raises(ConfigError, match=r"unknown feature tag: 'volatilty' \(did you mean 'volatility'"):
        FeaturePipeline(tags=["volatilty"])
    with pytest.raises(ConfigError, match="unknown feature"):
        DEFAULT_REGISTRY.get("nope")


@pytest.mark.parametrize("kwargs, what", [({"names": []}, "names"), ({"tags": ()}, "tags"),
                                          ({"names": ["ret_1d"], "tags": []}, "tags")])
def test_an_explicitly_empty_selection_is_an_error_not_every_feature(kwargs, what):
    with pytest.raises(ConfigError, match=rf"^feature {what} is an empty list: name at least one, or pass None"):
        FeaturePipeline(**kwargs)
    assert len(FeaturePipeline(names=None).feature_names) == len(DEFAULT_REGISTRY)  # None is the default


def test_missing_dependency_is_skipped_with_one_structured_log_record(panel, caplog):
    bare = panel.drop(columns=list(MKT_COLUMNS))
    pipe = FeaturePipeline(tags=["alternative", "returns"])
    with caplog.at_level(logging.WARNING, logger="plusultra.features"):
        out = pipe.transform_panel(bare)
    records = [r for r in caplog.records if r.name == "plusultra.features"]
    assert sorted(r.feature for r in records) == sorted(
        n for n in DEFAULT_REGISTRY.names if n.startswith("alt_"))
    vix = [r for r in records if r.feature == "alt_vix_z_252"]
    assert len(vix) == 1 and vix[0].missing == ["mkt_vix_close"]
    assert "alt_vix_z_252" in vix[0].getMessage() and "mkt_vix_close" in vix[0].getMessage()
    assert pipe.skipped["alt_cpi_yoy"] == ["mkt_core_cpi_value"]
    assert "ret_1d" in out.columns and not any(c.startswith("alt_") for c in out.columns)
    assert pipe.feature_names == list(out.columns)


def test_missing_dependency_through_a_feature_dependency(panel):
    pipe = FeaturePipeline(names=["xs_rank_vol_std_20", "ret_intraday"])
    out = pipe.transform_panel(panel.drop(columns=["close"]))
    assert out.columns.tolist() == []                          # both need close
    assert pipe.skipped == {"ret_intraday": ["close"], "xs_rank_vol_std_20": ["close"]}


def test_strict_mode_raises_naming_features_and_columns(panel):
    with pytest.raises(ConfigError, match=r"alt_oil_ret_20 needs mkt_wti_close"):
        FeaturePipeline(tags=["alternative"], strict=True).transform_panel(
            panel.drop(columns=["mkt_wti_close"]))


def test_registry_register_forms_and_errors():
    reg = FeatureRegistry()

    @reg.register(name="double_close", depends_on=["close"], tags=["test"])
    def double_close(ctx):
        """Twice the close."""
        return 2 * ctx["close"]

    reg.register(FeatureSpec("half", lambda ctx: ctx["double_close"] / 4, ["double_close"], 0, ["test"]))
    assert reg.get("double_close").description == "Twice the close."
    with pytest.raises(ConfigError, match="already registered"):
        reg.register(FeatureSpec("half", lambda ctx: None))
    with pytest.raises(ConfigError, match="shadows a raw panel column"):
        reg.register(FeatureSpec("mkt_vix", lambda ctx: None))
    panel = random_panel(n_symbols=2, n_days=30, seed=2)
    out = FeaturePipeline(names=["half"], registry=reg).transform_panel(panel)
    np.testing.assert_allclose(out["half"], panel["close"] / 2)
    cyc = FeatureRegistry()
    cyc.register(FeatureSpec("a", lambda ctx: None, ["b"]))
    cyc.register(FeatureSpec("b", lambda ctx: None, ["a"]))
    with pytest.raises(ConfigError, match="cycle: a -> b -> a"):
        FeaturePipeline(names=["a"], registry=cyc)
    bad = FeatureRegistry()
    bad.register(FeatureSpec("x", lambda ctx: None, ["not_a_feature"]))
    with pytest.raises(ConfigError, match="'not_a_feature', which is neither"):
        FeaturePipeline(registry=bad)


def test_bad_panel_index_is_rejected(panel):
    with pytest.raises(DataValidationError, match="MultiIndex"):
        FeaturePipeline(names=["ret_1d"]).transform_panel(panel.reset_index())
    dup = pd.concat([panel.iloc[:5], panel.iloc[:2]])
    with pytest.raises(DataValidationError, match="2 duplicate") as err:
        FeaturePipeline(names=["ret_1d"]).transform_panel(dup)
    assert err.value.check == "unique" and len(err.value.failure_cases) == 2
    keys = panel.index.to_frame(index=False).iloc[:4]
    keys.loc[1, "symbol"] = None
    no_symbol = pd.DataFrame({"close": np.ones(4)}, index=pd.MultiIndex.from_frame(keys))
    with pytest.raises(DataValidationError, match="missing .*symbol"):
        FeaturePipeline(names=["ret_1d"]).transform_panel(no_symbol)


def test_unsorted_panel_gives_the_same_values(panel):
    shuffled = panel.sample(frac=1.0, random_state=0)
    a = FeaturePipeline().transform_panel(panel)
    b = FeaturePipeline().transform_panel(shuffled)
    pd.testing.assert_frame_equal(b.loc[panel.index], a)


def test_empty_panel(panel):
    out = FeaturePipeline(names=["ret_1d"]).transform_panel(panel.iloc[:0])
    assert out.shape == (0, 1)


def test_symbols_are_computed_independently(panel):
    """All symbols at once equals each symbol alone (except the cross-sectional family)."""
    together = FeaturePipeline().transform_panel(panel)
    local = [n for n in DEFAULT_REGISTRY.names if DEFAULT_REGISTRY.get(n).family != "cross_sectional"]
    for sym in panel.index.get_level_values("symbol").unique():
        part = single_symbol(panel, sym)
        alone = FeaturePipeline(names=local).transform_panel(part)
        mine = together.loc[part.index, local]
        for name in local:
            np.testing.assert_allclose(alone[name], mine[name], rtol=1e-12, atol=1e-14,
                                       equal_nan=True, err_msg=f"{sym} {name}")
        # a single symbol ranks at 0.5 wherever defined
        xs = FeaturePipeline(names=["xs_rank_mom_20"]).transform_panel(part)["xs_rank_mom_20"]
        assert set(xs.dropna().unique()) == {0.5}
