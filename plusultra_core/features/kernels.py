"""Vectorised numeric kernels over wide ``[T, S]`` float64 matrices (time × symbol).

Every kernel works along axis 0 (time) for all symbols at once, and every kernel is *causal*:
row ``t`` of the result depends on rows ``<= t`` of the input only. Missing values are NaN.

Conventions shared by all rolling kernels (they match pandas' ``rolling(w)`` defaults):

- a window of length ``w`` ending at row ``t`` covers rows ``t-w+1 .. t``;
- the result is NaN unless all ``w`` values in the window are finite (``min_periods = w``).

Rolling sums use *blocked* prefix sums instead of one long cumulative sum: the time axis is cut
into blocks of ``w`` rows, and a window is the suffix sum of one block plus the prefix sum of the
next. Each sum then accumulates at most ``w`` terms, so rounding error stays at the level of a
direct sum (no drift over 5,000 rows), yet the cost is O(T·S) whatever ``w``.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

# Weight the unknown history before a recursive filter's first row may keep in a value once
# `warmup_rows` rows have passed: below float32 resolution (2^-24 ~ 6e-8 relative) with margin,
# so features stored as float32 are the same whether computed from all history or from the
# declared lookback (train/serve parity; incremental updates equal rebuilds).
WARMUP_TOL = 1e-8

# Rows of sliding windows materialised at once by the window-view kernels; bounds memory at
# about CHUNK_ROWS × S × w × 8 bytes.
CHUNK_ROWS = 256


def safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` with NaN (not ±inf) where ``den`` is 0 or non-finite."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = num / den
    out[~np.isfinite(out)] = np.nan
    return out


def shift(x: np.ndarray, n: int = 1) -> np.ndarray:
    """Value ``n`` rows earlier (``n >= 0``); the first ``n`` rows are NaN."""
    out = np.full_like(x, np.nan)
    if n == 0:
        return x.copy()
    out[n:] = x[:-n]
    return out


def ffill(x: np.ndarray) -> np.ndarray:
    """Forward fill NaNs along time (causal); leading NaNs stay NaN. Never fills backwards."""
    rows = np.arange(x.shape[0])[:, None]
    # [T, S] index of the last finite row at or before t (0 when none, which is then NaN itself)
    last = np.maximum.accumulate(np.where(np.isfinite(x), rows, 0), axis=0)
    return np.take_along_axis(x, last, axis=0)


def first_valid_row(x: np.ndarray) -> np.ndarray:
    """[S] index of the first finite row of each column (T when the column has none)."""
    finite = np.isfinite(x)
    return np.where(finite.any(axis=0), finite.argmax(axis=0), x.shape[0])


def _to_blocks(x: np.ndarray, w: int) -> np.ndarray:
    """Zero-pad ``x`` [T, S] to whole blocks and view it as [n_blocks, w, S]."""
    t, s = x.shape
    n_blocks = -(-t // w)
    padded = np.zeros((n_blocks * w, s), dtype=np.float64)
    padded[:t] = x
    return padded.reshape(n_blocks, w, s)


def _window_from_blocks(prefix: np.ndarray, t: int) -> np.ndarray:
    """Combine block prefix sums [n_blocks, w, S] into trailing-window sums [T, S].

    A window ending at offset ``r`` of block ``j`` starts at offset ``r+1`` of block ``j-1``:
    its sum is ``(total[j-1] - prefix[j-1, r]) + prefix[j, r]`` (a suffix of the previous block
    plus a prefix of this one, each at most ``w`` terms); at ``r = w-1`` it is block ``j`` whole.
    Rows before the first full window are partial (callers mask them with the count).
    """
    n_blocks, w, s = prefix.shape
    out = prefix.copy()
    out[1:, :w - 1] += prefix[:-1, w - 1:w] - prefix[:-1, :w - 1]
    return out.reshape(-1, s)[:t]


def _blocked_window_sum(x: np.ndarray, w: int) -> np.ndarray:
    """Sum of rows ``t-w+1 .. t`` (exact only for ``t >= w-1``); ``x`` has no NaN."""
    return _window_from_blocks(np.cumsum(_to_blocks(x, w), axis=1), x.shape[0])


def rolling_count(x: np.ndarray, w: int) -> np.ndarray:
    """Number of finite values in each trailing window of ``w`` rows (partial at the start)."""
    return _blocked_window_sum(np.isfinite(x).astype(np.float64), w)


def rolling_sum(x: np.ndarray, w: int, min_periods: int | None = None) -> np.ndarray:
    """Trailing-window sum of the finite values; NaN where fewer than ``min_periods`` (``w``)."""
    finite = np.isfinite(x)
    if finite.all():  # common case (OHLCV): no masking pass, only the warm-up rows are NaN
        total = _blocked_window_sum(x, w)
        total[:(min_periods or w) - 1] = np.nan
        return total
    total = _blocked_window_sum(np.where(finite, x, 0.0), w)
    total[_blocked_window_sum(finite.astype(np.float64), w) < (min_periods or w) - 0.5] = np.nan
    return total


def rolling_mean(x: np.ndarray, w: int, min_periods: int | None = None) -> np.ndarray:
    """Trailing-window mean (pandas ``rolling(w, min_periods).mean()``: NaNs are skipped)."""
    if min_periods is None or min_periods >= w:
        return rolling_sum(x, w) / w
    finite = np.isfinite(x)
    count = _blocked_window_sum(finite.astype(np.float64), w)
    total = _blocked_window_sum(np.where(finite, x, 0.0), w)
    return np.where(count >= min_periods - 0.5, total / np.maximum(count, 1.0), np.nan)


def _centred_power_sums(x: np.ndarray, w: int, order: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Sums ``Σ(x-a)^p`` (p = 1..order) over each trailing window, and a validity mask.

    Raw power sums ``Σx^p`` lose all precision when the mean is large next to the spread
    (prices): moments are shift-invariant, so each block of ``w`` rows is centred on its own
    first value ``a_k``. A window spanning blocks ``k`` and ``k+1`` re-centres its second part on
    ``a_k`` through the binomial expansion in ``δ = a_{k+1} - a_k`` (e.g.
    ``Σ(x-a_k)² = P2 + 2δ·P1 + m·δ²``); every term is then of the size of the local spread.
    ``a_k`` is a row at or before the window's start, so the kernel stays causal.
    """
    t, s = x.shape
    finite = np.isfinite(x)
    blocks = _to_blocks(np.where(finite, x, 0.0), w)                  # [nb, w, S]
    mask = _to_blocks(finite.astype(np.float64), w)
    anchor = blocks[:, 0, :]                                           # [nb, S]
    c = (blocks - anchor[:, None, :]) * mask
    pows = [mask]
    for _ in range(order):
        pows.append(pows[-1] * c)                                      # c^p, zero where NaN
    prefix = [np.cumsum(p, axis=1) for p in pows]                      # index 0 = counts
    delta = np.zeros_like(anchor)
    delta[1:] = anchor[1:] - anchor[:-1]                               # a_j - a_{j-1}
    delta_pow = [np.ones_like(delta), delta]
    for _ in range(order - 1):
        delta_pow.append(delta_pow[-1] * delta)
    binom = [[1], [1, 1], [1, 2, 1], [1, 3, 3, 1], [1, 4, 6, 4, 1]]
    sums = []
    for p in range(order + 1):
        # Prefix part of a split window re-centred on the previous block's anchor:
        # Σ(y + δ)^p with y = x - a_j, i.e. Σ_i C(p,i) δ^(p-i) P_i   -> [nb-1, w-1, S]
        head = prefix[p][1:, :w - 1].copy()
        for i in range(p):
            head += binom[p][i] * delta_pow[p - i][1:, None, :] * prefix[i][1:, :w - 1]
        out = prefix[p].copy()                                         # whole block: own anchor
        # suffix of the previous block (offsets r+1..w-1) = its total - its prefix at r
        out[1:, :w - 1] = head + prefix[p][:-1, w - 1:w] - prefix[p][:-1, :w - 1]
        out[0, :w - 1] = 0.0
        sums.append(out.reshape(-1, s)[:t])
    valid = sums[0] > w - 0.5
    valid[:w - 1] = False
    return sums[1:], valid


def rolling_var(x: np.ndarray, w: int, ddof: int = 1) -> np.ndarray:
    """Trailing-window variance (pandas ``rolling(w).var(ddof)``) without cancellation."""
    (s1, s2), valid = _centred_power_sums(x, w, 2)
    var = np.maximum((s2 - s1 * s1 / w) / (w - ddof), 0.0)
    var[~valid] = np.nan
    return var


def rolling_std(x: np.ndarray, w: int, ddof: int = 1) -> np.ndarray:
    """Trailing-window standard deviation (pandas ``rolling(w).std(ddof)``)."""
    return np.sqrt(rolling_var(x, w, ddof))


def rolling_moments(x: np.ndarray, w: int):
    """Biased central moments m2, m3, m4 of each trailing window (NaN where not full)."""
    (s1, s2, s3, s4), valid = _centred_power_sums(x, w, 4)
    mu = s1 / w
    m2 = s2 / w - mu * mu
    m3 = s3 / w - 3.0 * mu * s2 / w + 2.0 * mu ** 3
    m4 = s4 / w - 4.0 * mu * s3 / w + 6.0 * mu * mu * s2 / w - 3.0 * mu ** 4
    for m in (m2, m3, m4):
        m[~valid] = np.nan
    return m2, m3, m4


def skew_from_moments(m2: np.ndarray, m3: np.ndarray, w: int) -> np.ndarray:
    """Bias-corrected sample skewness (pandas ``rolling(w).skew()``) from central moments."""
    return safe_div(m3, m2 ** 1.5) * np.sqrt(w * (w - 1.0)) / (w - 2.0)


def kurt_from_moments(m2: np.ndarray, m4: np.ndarray, w: int) -> np.ndarray:
    """Bias-corrected excess kurtosis (pandas ``rolling(w).kurt()``) from central moments."""
    g2 = safe_div(m4, m2 * m2) - 3.0
    return ((w + 1.0) * g2 + 6.0) * (w - 1.0) / ((w - 2.0) * (w - 3.0))


def rolling_skew(x: np.ndarray, w: int) -> np.ndarray:
    """Trailing-window sample skewness, bias-corrected as pandas ``rolling(w).skew()``."""
    m2, m3, _ = rolling_moments(x, w)
    return skew_from_moments(m2, m3, w)


def rolling_kurt(x: np.ndarray, w: int) -> np.ndarray:
    """Trailing-window excess kurtosis, bias-corrected as pandas ``rolling(w).kurt()``."""
    m2, _, m4 = rolling_moments(x, w)
    return kurt_from_moments(m2, m4, w)


def rolling_mad(x: np.ndarray, w: int) -> np.ndarray:
    """Trailing-window mean absolute deviation around the window mean (as ``ta``'s CCI)."""
    t, s = x.shape
    out = np.full((t, s), np.nan)
    if t < w:
        return out
    mean = rolling_mean(x, w)[w - 1:]                             # [T-w+1, S]
    view = sliding_window_view(x, w, axis=0)                   # [T-w+1, S, w], no copy
    for r0 in range(0, view.shape[0], CHUNK_ROWS):             # loop over row chunks only
        v = view[r0:r0 + CHUNK_ROWS]
        dev = np.subtract(v, mean[r0:r0 + v.shape[0], :, None])  # one temporary, reused
        np.abs(dev, out=dev)
        out[w - 1 + r0:w - 1 + r0 + v.shape[0]] = dev.sum(axis=-1) / w
    return out


def _rolling_extreme(x: np.ndarray, w: int, fn, fill: float) -> np.ndarray:
    finite = np.isfinite(x)
    # origin shifts the size-w filter so that it covers rows t-w+1 .. t (trailing, causal)
    out = fn(np.where(finite, x, fill), size=w, axis=0, mode="constant", cval=fill,
             origin=(w - 1) // 2)
    out[rolling_count(x, w) < w] = np.nan
    return out


def rolling_max(x: np.ndarray, w: int) -> np.ndarray:
    """Trailing-window maximum (van Herk/Gil-Werman filter from scipy.ndimage)."""
    from scipy import ndimage  # scipy's submodules load on first use: importing the features is cheap

    return _rolling_extreme(x, w, ndimage.maximum_filter1d, -np.inf)


def rolling_min(x: np.ndarray, w: int) -> np.ndarray:
    """Trailing-window minimum."""
    from scipy import ndimage

    return _rolling_extreme(x, w, ndimage.minimum_filter1d, np.inf)


def ewm(x: np.ndarray, *, alpha: float | None = None, span: float | None = None,
        min_periods: int = 1) -> np.ndarray:
    """Exponentially weighted mean, pandas ``ewm(alpha|span, adjust=False)`` semantics.

    ``y[f] = x[f]`` at each column's first finite row ``f``, then
    ``y[t] = (1-α) y[t-1] + α x[t]`` through ``scipy.signal.lfilter`` along time.
    Leading NaNs stay NaN and count against ``min_periods``; interior NaNs carry the last value
    forward (causal) instead of poisoning the rest of the column.
    """
    if alpha is None:
        if span is None:
            raise ValueError("ewm needs alpha or span")
        alpha = 2.0 / (span + 1.0)
    return _recursive_mean(x, alpha, first_valid_row(x), seed=None, min_periods=min_periods)


def wilder(x: np.ndarray, n: int) -> np.ndarray:
    """Wilder smoothing seeded by the simple mean of the first ``n`` values (as ATR in ``ta``).

    ``y[f+n-1] = mean(x[f..f+n-1])``, then ``y[t] = y[t-1]·(n-1)/n + x[t]/n``; earlier rows NaN.
    """
    t, s = x.shape
    start = first_valid_row(x) + n - 1
    rows = np.minimum(start[None, :] - np.arange(n)[:, None], t - 1)      # [n, S] seed window
    seed = np.where(start < t, x[np.maximum(rows, 0), np.arange(s)].mean(axis=0), np.nan)
    return _recursive_mean(x, 1.0 / n, start, seed=seed, min_periods=1)


def _recursive_mean(x: np.ndarray, alpha: float, start: np.ndarray, *, seed: np.ndarray | None,
                    min_periods: int) -> np.ndarray:
    """``y[start] = seed or x[start]``; ``y[t] = (1-α)y[t-1] + αx[t]`` after; NaN before."""
    t, s = x.shape
    cols = np.arange(s)
    ok = start < t
    finite = np.isfinite(x)
    # interior NaNs carry the last value (causal); skip the pass when there are none
    filled = x if finite.all() else ffill(x)
    rows = np.arange(t)[:, None]
    drive = np.where(rows > start[None, :], filled, 0.0)
    # Inject the seed as an impulse at `start`: lfilter scales it by α, so divide by α first.
    first_vals = x[np.minimum(start, t - 1), cols] if seed is None else seed
    drive[start[ok], cols[ok]] = first_vals[ok] / alpha
    if not finite.all():
        drive = np.nan_to_num(drive, nan=0.0)
    # time along the last axis runs the recursion over contiguous memory (faster than axis 0)
    from scipy.signal import lfilter

    out = lfilter([alpha], [1.0, alpha - 1.0], drive.T, axis=1).T
    valid = rows >= (start + max(min_periods, 1) - 1)[None, :]
    valid &= np.isfinite(first_vals)[None, :]
    return np.where(valid, out, np.nan)


def sliding_windows(x: np.ndarray, w: int):
    """Yield ``(row_slice, windows[c, S, w])`` chunks over trailing windows of ``x``.

    ``row_slice`` selects the rows of a ``[T, S]`` result the chunk's windows end at.
    Used by kernels that need the whole window (FFT, argmax) without materialising T×S×w.
    """
    t = x.shape[0]
    if t < w:
        return
    view = sliding_window_view(x, w, axis=0)
    for r0 in range(0, view.shape[0], CHUNK_ROWS):
        v = view[r0:r0 + CHUNK_ROWS]
        yield slice(w - 1 + r0, w - 1 + r0 + v.shape[0]), v


def warmup_rows(alpha: float, tol: float = WARMUP_TOL, stages: int = 1) -> int:
    """Rows after which a recursive mean's unknown earlier history weighs less than ``tol``.

    One filter ``y[t] = (1-α)y[t-1] + αx[t]`` started ``n`` rows ago from a wrong state carries
    ``(1-α)^n`` of that error. ``stages`` identical filters in cascade (ADX smooths a quantity
    that is itself Wilder-smoothed) carry at most ``(1-α)^n · Σ_{k<stages} C(n,k) (α/(1-α))^k``
    (the tail of the cascade's negative-binomial impulse response); the smallest such ``n``.
    """
    if stages == 1:
        return int(np.ceil(np.log(tol) / np.log1p(-alpha)))
    n = np.arange(1, 100_000, dtype=np.float64)
    ratio = alpha / (1.0 - alpha)
    # log C(n, k) = Σ_{j<k} log(n - j) - log k! for the few k < stages (-inf where k > n); numpy
    # only, so importing the feature registry (which calls this) does not load scipy.special
    with np.errstate(divide="ignore"):
        log_terms = [sum((np.log(np.maximum(n - j, 0.0)) for j in range(k)), np.zeros_like(n))
                     - math.lgamma(k + 1) + k * np.log(ratio) for k in range(stages)]
    bound = np.log1p(-alpha) * n + np.logaddexp.reduce(np.stack(log_terms), axis=0)
    return int(n[np.argmax(bound < np.log(tol))])
