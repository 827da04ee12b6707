"""Feature stage benchmark: `FeaturePipeline` vs the ``ta`` library applied per symbol.

Both compute the same indicators — RSI(14), MACD(12,26,9) line/signal/histogram, ATR(14),
stochastic %K/%D(14,3), CCI(20), Williams %R(14), ADX(14) with ±DI, Bollinger %B and width(20),
OBV, SMA(20), EMA(12/26) — on one in-memory random-walk panel (``n_symbols`` × ``n_days``
business days). The peer is the honest way people use ``ta``: a loop over symbols
(``groupby``), one indicator object per symbol. Ours pivots the long panel once and computes
every symbol at once on wide matrices, then stacks back to the panel index (both included in
the time). A second row times every default feature (no peer). Goal: >= 20x faster than ``ta``.

``python -m bench.bench_features --symbols 100 --days 2000`` runs a reduced scale.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import pandas as pd

from bench.common import BenchResult, measure, print_results, scale_parser

# Our features covering the indicators computed with ta in `_ta_per_symbol`.
OVERLAP = ["rsi_14", "macd_line", "macd_signal", "macd_hist", "atr_14", "stoch_k_14",
           "stoch_d_14", "cci_20", "williams_r_14", "adx_14", "di_diff_14", "bb_pctb_20",
           "bb_width_20", "obv_slope_20", "sma_ratio_20", "ema_cross_12_26"]


def make_panel(n_symbols: int, n_days: int, seed: int = 0) -> pd.DataFrame:
    """Random-walk OHLCV panel in the feature-input format (MultiIndex timestamp, symbol)."""
    rng = np.random.default_rng(seed)
    shape = (n_days, n_symbols)
    close = 100.0 * np.exp(np.cumsum(0.012 * rng.standard_normal(shape), axis=0))
    open_ = close * np.exp(0.004 * rng.standard_normal(shape))
    high = np.maximum(open_, close) * np.exp(np.abs(0.006 * rng.standard_normal(shape)))
    low = np.minimum(open_, close) * np.exp(-np.abs(0.006 * rng.standard_normal(shape)))
    volume = rng.lognormal(13.0, 0.5, shape).round()
    dates = pd.bdate_range("2000-01-03", periods=n_days)
    symbols = [f"S{i:04d}" for i in range(n_symbols)]
    index = pd.MultiIndex.from_product([dates, symbols], names=["timestamp", "symbol"])
    return pd.DataFrame({"open": open_.ravel(), "high": high.ravel(), "low": low.ravel(),
                         "close": close.ravel(), "volume": volume.ravel()}, index=index)


def _ours(panel: pd.DataFrame, names: list[str] | None) -> dict:
    from plusultra_core.features import FeaturePipeline

    cpu = time.process_time()
    out = FeaturePipeline(names=names).transform_panel(panel)
    return {"rows": len(out), "columns": out.shape[1], "cpu_s": time.process_time() - cpu}


def _ta_per_symbol(panel: pd.DataFrame, max_symbols: int | None) -> dict:
    import ta

    cpu = time.process_time()
    n_cols = n_sym = 0
    for symbol, bars in panel.groupby(level="symbol", sort=False):
        if max_symbols is not None and n_sym >= max_symbols:
            break
        bars = bars.droplevel("symbol")
        h, l, c, v = bars["high"], bars["low"], bars["close"], bars["volume"]
        macd = ta.trend.MACD(c, window_slow=26, window_fast=12, window_sign=9)
        stoch = ta.momentum.StochasticOscillator(h, l, c, window=14, smooth_window=3)
        adx = ta.trend.ADXIndicator(h, l, c, window=14)
        bb = ta.volatility.BollingerBands(c, window=20, window_dev=2)
        cols = {
            "rsi": ta.momentum.RSIIndicator(c, 14).rsi(),
            "macd": macd.macd(), "macd_signal": macd.macd_signal(), "macd_diff": macd.macd_diff(),
            "atr": ta.volatility.AverageTrueRange(h, l, c, window=14).average_true_range(),
            "stoch_k": stoch.stoch(), "stoch_d": stoch.stoch_signal(),
            "cci": ta.trend.CCIIndicator(h, l, c, window=20).cci(),
            "williams_r": ta.momentum.WilliamsRIndicator(h, l, c, lbp=14).williams_r(),
            "adx": adx.adx(), "adx_pos": adx.adx_pos(), "adx_neg": adx.adx_neg(),
            "bb_pband": bb.bollinger_pband(), "bb_wband": bb.bollinger_wband(),
            "obv": ta.volume.OnBalanceVolumeIndicator(c, v).on_balance_volume(),
            "sma20": ta.trend.SMAIndicator(c, 20).sma_indicator(),
            "ema12": ta.trend.EMAIndicator(c, 12).ema_indicator(),
            "ema26": ta.trend.EMAIndicator(c, 26).ema_indicator(),
        }
        n_cols = len(cols)
        n_sym += 1
    return {"symbols": n_sym, "columns": n_cols, "cpu_s": time.process_time() - cpu}


def run(n_symbols: int = 500, n_days: int = 5000, baseline_symbols: int | None = None) -> list[BenchResult]:
    """Time ours vs ``ta`` per symbol; ``baseline_symbols`` times ta on a subset and scales up
    linearly (ta's cost is exactly per symbol), to keep very large runs affordable."""
    import ta  # noqa: F401  (imported here so no child times an import)

    import plusultra_core.features  # noqa: F401

    logging.getLogger("plusultra.features").setLevel(logging.ERROR)  # alt_* skips are expected
    panel = make_panel(n_symbols, n_days)
    rows = len(panel)
    ours = measure(_ours, panel, OVERLAP)
    everything = measure(_ours, panel, None)
    peer = measure(_ta_per_symbol, panel, baseline_symbols)
    done = peer.value["symbols"]
    peer_seconds = peer.seconds * n_symbols / done
    scale = f"{n_symbols} symbols x {n_days} days"
    extrapolated = {} if done == n_symbols else {"ta_timed_symbols": done, "ta_timed_seconds": peer.seconds}
    # CPU seconds beside wall seconds: on a shared machine the CPU ratio is the steadier one
    cpu = {"cpu_s": ours.value["cpu_s"], "ta_cpu_s": peer.value["cpu_s"] * n_symbols / done,
           "cpu_ratio": peer.value["cpu_s"] * n_symbols / done / ours.value["cpu_s"]}
    return [
        BenchResult("features", f"overlapping ta indicators ({len(OVERLAP)} features), {scale}",
                    ours.seconds, peer_seconds, "ta per symbol", "s", goal=">= 20x faster",
                    extra={"peak_rss_mb": ours.peak_rss_mb, "ta_peak_rss_mb": peer.peak_rss_mb,
                           **cpu, **extrapolated}),
        BenchResult("features", f"overlapping indicators throughput, {scale}",
                    rows / ours.seconds, rows / peer_seconds, "ta per symbol", "rows/s"),
        BenchResult("features", f"all {everything.value['columns']} default features, {scale}",
                    everything.seconds, None, None, "s",
                    extra={"rows_per_s": rows / everything.seconds, "cpu_s": everything.value["cpu_s"],
                           "peak_rss_mb": everything.peak_rss_mb}),
    ]


def main(argv: list[str] | None = None) -> None:
    parser = scale_parser(__doc__, days=5000)
    parser.add_argument("--baseline-symbols", type=int, default=None,
                        help="time ta on this many symbols and scale linearly")
    args = parser.parse_args(argv)
    results = run(args.symbols, args.days, args.baseline_symbols)
    print_results(results)


if __name__ == "__main__":
    main()
