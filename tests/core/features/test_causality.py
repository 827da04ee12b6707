"""Every registered feature is causal, and its declared lookback is enough history.

Causality: features computed on a panel truncated at ``t`` equal those computed on the full
panel, for every row up to ``t`` (hypothesis picks the panel and ``t``). Any use of a later bar
(a centred window, a backward fill, a full-sample statistic) breaks the equality.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plusultra_core.features import DEFAULT_REGISTRY, FeaturePipeline

from .panels import random_panel

ALL = DEFAULT_REGISTRY.names


def _assert_same(a: pd.DataFrame, b: pd.DataFrame, rtol: float, atol: float, what: str) -> None:
    assert list(a.columns) == list(b.columns)
    for name in a.columns:
        x, y = a[name].to_numpy(), b[name].to_numpy()
        bad = ~((np.isnan(x) & np.isnan(y)) | (np.abs(x - y) <= atol + rtol * np.abs(y)))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise AssertionError(f"{what}: feature {name!r} differs at {a.index[i]}: "
                                 f"{x[i]!r} vs {y[i]!r} ({int(bad.sum())} rows)")


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), n_symbols=st.integers(1, 3), cut=st.floats(0.05, 0.95))
def test_every_feature_is_causal(seed, n_symbols, cut):
    panel = random_panel(n_symbols=n_symbols, n_days=300, seed=seed)
    pipe = FeaturePipeline(strict=True)
    full = pipe.transform_panel(panel)
    assert pipe.feature_names == ALL                       # nothing skipped: all are tested
    ts = panel.index.get_level_values("timestamp")
    t = ts.unique()[int(cut * (ts.nunique() - 1))]
    head = panel[ts <= t]
    truncated = FeaturePipeline(strict=True).transform_panel(head)
    _assert_same(truncated, full.loc[head.index], rtol=1e-12, atol=1e-12,
                 what=f"truncated at {t.date()}")


def test_causality_test_catches_look_ahead():
    """A deliberately leaky feature (tomorrow's close) fails the same comparison."""
    from plusultra_core.features.registry import FeatureRegistry

    reg = FeatureRegistry()

    @reg.register(name="leak", depends_on=["close"], tags=["test"])
    def leak(ctx):
        out = np.full(ctx.shape, np.nan)
        out[:-1] = ctx["close"][1:]
        return out

    panel = random_panel(n_symbols=2, n_days=60, seed=1)
    ts = panel.index.get_level_values("timestamp")
    head = panel[ts <= ts.unique()[30]]
    full = FeaturePipeline(registry=reg).transform_panel(panel)
    part = FeaturePipeline(registry=reg).transform_panel(head)
    try:
        _assert_same(part, full.loc[head.index], 1e-12, 1e-12, "leak")
    except AssertionError:
        return
    raise AssertionError("the causality comparison did not detect a look-ahead feature")


# The feature stage reads two previous yearly periods (>= 2 x 240 sessions) as lookback: every
# feature must fit in them, or each yearly partition would need a third year.
MAX_LOOKBACK = 2 * 240 - 1
FLOAT32_RTOL = 2.0 ** -23   # float32 machine epsilon: what the window tensors can resolve


def test_declared_lookback_is_enough_history():
    """Dropping all but ``lookback`` earlier bars leaves the value unchanged to float32 resolution.

    Finite windows are exact; exponential/Wilder filters declare the warm-up after which the
    unknown earlier history weighs < 1e-8 (``kernels.WARMUP_TOL``), below float32 resolution, so
    the agent's padded read and the partition lookback both reproduce the stored float32 value.
    With the former 1e-4 warm-ups this comparison fails (rsi_14, atr_14, ema_cross_*, macd_*).
    """
    panel = random_panel(n_symbols=2, n_days=1000, seed=3, ragged=False)
    full = FeaturePipeline().transform_panel(panel)
    ts = panel.index.get_level_values("timestamp")
    dates = ts.unique()
    start = 400
    tail = panel[ts >= dates[start]]
    late = FeaturePipeline().transform_panel(tail)
    for spec in DEFAULT_REGISTRY:
        assert spec.lookback <= MAX_LOOKBACK, f"{spec.name}: lookback {spec.lookback} > {MAX_LOOKBACK}"
        if spec.cross_sectional:
            continue  # ranks of values that are themselves checked
        rows = tail.index[tail.index.get_level_values("timestamp") >= dates[start + spec.lookback]]
        x = late.loc[rows, spec.name].to_numpy()
        y = full.loc[rows, spec.name].to_numpy()
        assert np.isfinite(y).mean() > 0.9, spec.name
        # float32 resolution at the feature's own magnitude: a ratio minus one (ema_cross) near 0
        # has finer float32 steps than its inputs could ever resolve
        scale = np.nanmax(np.abs(y))
        np.testing.assert_allclose(x, y, rtol=FLOAT32_RTOL, atol=FLOAT32_RTOL * scale, equal_nan=True,
                                   err_msg=f"{spec.name}: lookback {spec.lookback} is not enough")


def test_warmup_rows_bound_the_weight_of_unknown_history():
    """One filter keeps (1-a)^n of a wrong start; a cascade of two keeps at most (1 + n a/(1-a))(1-a)^n."""
    from scipy import signal

    from plusultra_core.features import kernels as k

    alpha = 1.0 / 14
    one, two = k.warmup_rows(alpha), k.warmup_rows(alpha, stages=2)
    assert (1 - alpha) ** one < k.WARMUP_TOL <= (1 - alpha) ** (one - 1)
    # impulse response of two cascaded filters to a unit error in the first one's state
    impulse = np.zeros(two + 1)
    impulse[0] = 1.0
    first = signal.lfilter([1.0], [1.0, alpha - 1.0], impulse) * (1 - alpha)   # error left after t rows
    second = signal.lfilter([alpha], [1.0, alpha - 1.0], first)                # carried into stage two
    assert second[-1] + first[-1] < k.WARMUP_TOL
    assert two > one
