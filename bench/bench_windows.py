"""Window stage benchmark: SlidingWindowDataset vs pytorch-forecasting's TimeSeriesDataSet.

Measures, on synthetic float32 panels (random features, random-walk returns, one contiguous
block per symbol):
- construction time and extra memory of ``SlidingWindowDataset`` (goal: extra <= 1.1x the panel's
  array bytes; it should be a small fraction, since no window is copied),
- batch assembly throughput for random batches through ``get_batch`` and through the
  collate-free DataLoader path,
- the peer ``pytorch_forecasting.TimeSeriesDataSet`` + DataLoader on a slice of matched size
  (it is slow and memory-hungry), beside ours on exactly the same slice.

Every measurement runs in a forked child (``bench.common.measure``); the base arrays are made in
the parent so the child's RSS growth is the dataset's own (tracemalloc inside the child is
reported too, since a forked child can inherit the parent's RSS high-water mark). ``python -m bench.bench_windows
--symbols 100`` runs a reduced scale.
"""

from __future__ import annotations

import time
import tracemalloc

import numpy as np

from bench.common import BenchResult, measure, print_results, scale_parser


def make_arrays(n_symbols: int, n_days: int, n_features: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Synthetic base arrays: [N, F] float32 features, [N] returns, timestamps, group ids."""
    rng = np.random.default_rng(seed)
    n = n_symbols * n_days
    features = rng.standard_normal((n, n_features), dtype=np.float32)
    returns = (rng.standard_normal(n, dtype=np.float32) * np.float32(0.01))
    days = np.arange(n_days, dtype=np.int64).astype("datetime64[D]").astype("datetime64[ns]")
    return {
        "features": features,
        "returns": returns,
        "timestamps": np.tile(days, n_symbols),
        "group_ids": np.repeat(np.arange(n_symbols, dtype=np.int32), n_days),
    }


def _build(arrays: dict, context: int, horizon: int) -> dict:
    from plusultra_core.windows import SlidingWindowDataset

    tracemalloc.start()
    t0 = time.perf_counter()
    ds = SlidingWindowDataset(arrays["features"], arrays["returns"], arrays["timestamps"],
                              arrays["group_ids"], context_length=context, horizon=horizon)
    seconds = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"seconds": seconds, "traced_peak_mb": peak / 2**20, "samples": len(ds)}


def _ours_throughput(arrays: dict, context: int, horizon: int, batch: int, n_batches: int,
                     via_loader: bool) -> dict:
    import torch

    from plusultra_core.windows import SlidingWindowDataset

    torch.set_num_threads(1)
    ds = SlidingWindowDataset(arrays["features"], arrays["returns"], arrays["timestamps"],
                              arrays["group_ids"], context_length=context, horizon=horizon)
    rng = np.random.default_rng(0)
    batches = [rng.integers(0, len(ds), batch) for _ in range(n_batches)]
    ds.get_batch(batches[0])  # warm-up (first-touch page faults of the base array)
    t0 = time.perf_counter()
    seen = 0
    if via_loader:
        for x, y in ds.loader(batches):
            seen += x.shape[0]
    else:
        for idx in batches:
            x, y = ds.get_batch(idx)
            seen += x.shape[0]
    seconds = time.perf_counter() - t0
    return {"samples_per_s": seen / seconds, "seconds": seconds}


def _peer_frame(arrays: dict, n_days: int):
    import pandas as pd

    n_features = arrays["features"].shape[1]
    df = pd.DataFrame(arrays["features"], columns=[f"f{j}" for j in range(n_features)])
    df["target"] = arrays["returns"]
    df["group"] = arrays["group_ids"].astype(str)
    df["time_idx"] = np.tile(np.arange(n_days), len(df) // n_days)
    return df


def _peer_build(arrays: dict, n_days: int, context: int, horizon: int) -> dict:
    from pytorch_forecasting import TimeSeriesDataSet

    df = _peer_frame(arrays, n_days)
    tracemalloc.start()
    t0 = time.perf_counter()
    ds = TimeSeriesDataSet(
        df, time_idx="time_idx", target="target", group_ids=["group"],
        max_encoder_length=context, min_encoder_length=context, max_prediction_length=horizon,
        time_varying_unknown_reals=[c for c in df.columns if c.startswith("f")] + ["target"],
    )
    seconds = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"seconds": seconds, "traced_peak_mb": peak / 2**20, "samples": len(ds)}


def _peer_throughput(arrays: dict, n_days: int, context: int, horizon: int, batch: int, n_batches: int) -> dict:
    import torch
    from pytorch_forecasting import TimeSeriesDataSet

    torch.set_num_threads(1)
    df = _peer_frame(arrays, n_days)
    ds = TimeSeriesDataSet(
        df, time_idx="time_idx", target="target", group_ids=["group"],
        max_encoder_length=context, min_encoder_length=context, max_prediction_length=horizon,
        time_varying_unknown_reals=[c for c in df.columns if c.startswith("f")] + ["target"],
    )
    loader = ds.to_dataloader(train=True, batch_size=batch, num_workers=0)
    next(iter(loader))  # warm-up
    t0 = time.perf_counter()
    seen = done = 0
    while done < n_batches:  # restart the epoch if a small slice has fewer batches than asked
        for x, _y in loader:
            seen += x["encoder_cont"].shape[0]
            done += 1
            if done == n_batches:
                break
    seconds = time.perf_counter() - t0
    return {"samples_per_s": seen / seconds, "seconds": seconds}


def run(n_symbols: int = 500, n_days: int = 5000, n_features: int = 32, context: int = 128, horizon: int = 5,
        batch: int = 256, peer_symbols: int = 50, peer_features: int = 20, peer_context: int = 64,
        n_batches: int = 200, peer_batches: int = 20) -> list[BenchResult]:
    """Measure ours at the given scale and ours vs the peer at the peer's (smaller) scale."""
    results: list[BenchResult] = []
    # Import the heavy libraries here, so forked children start with them loaded and their RSS
    # growth is the datasets' own, not torch's import (~250 MB).
    import pytorch_forecasting  # noqa: F401
    import torch  # noqa: F401

    import plusultra_core.windows  # noqa: F401

    arrays = make_arrays(n_symbols, n_days, n_features)
    base_mb = arrays["features"].nbytes / 2**20
    base_all_mb = sum(a.nbytes for a in arrays.values()) / 2**20
    scale = f"{n_symbols}x{n_days}x{n_features}, T={context}, H={horizon}"
    built = measure(_build, arrays, context, horizon)
    results.append(BenchResult("windows", f"build seconds ({scale})", built.value["seconds"], None, None, "s",
                               extra={"samples": built.value["samples"]}))
    results.append(BenchResult(
        "windows", f"build extra memory / feature array bytes ({scale}, base {base_mb:.0f} MB)",
        max(built.peak_rss_mb, built.value["traced_peak_mb"]) / base_mb, None, None, "x", goal="<= 1.1x",
        extra={"rss_mb": built.peak_rss_mb, "traced_mb": built.value["traced_peak_mb"],
               "base_arrays_mb": base_all_mb, "copy_of_all_windows_mb": base_mb * context}))
    fast = measure(_ours_throughput, arrays, context, horizon, batch, n_batches, False)
    results.append(BenchResult("windows", f"get_batch samples/s, random batches of {batch} ({scale})",
                               fast.value["samples_per_s"], None, None, "samples/s"))
    del arrays

    # Matched size against the peer.
    peer_arrays = make_arrays(peer_symbols, n_days, peer_features, seed=1)
    pscale = f"{peer_symbols}x{n_days}x{peer_features}, T={peer_context}, H={horizon}"
    peer_mb = peer_arrays["features"].nbytes / 2**20
    ours_b = measure(_build, peer_arrays, peer_context, horizon)
    peer_b = measure(_peer_build, peer_arrays, n_days, peer_context, horizon)
    results.append(BenchResult("windows", f"build seconds ({pscale})", ours_b.value["seconds"],
                               peer_b.value["seconds"], "pytorch-forecasting TimeSeriesDataSet", "s"))
    results.append(BenchResult(
        "windows", f"build extra memory MB ({pscale}, base {peer_mb:.0f} MB)",
        max(ours_b.peak_rss_mb, ours_b.value["traced_peak_mb"]),
        max(peer_b.peak_rss_mb, peer_b.value["traced_peak_mb"]), "pytorch-forecasting TimeSeriesDataSet", "MB"))
    ours_t = measure(_ours_throughput, peer_arrays, peer_context, horizon, batch, n_batches, True)
    peer_t = measure(_peer_throughput, peer_arrays, n_days, peer_context, horizon, batch, peer_batches)
    results.append(BenchResult("windows", f"DataLoader samples/s, batch {batch}, 0 workers ({pscale})",
                               ours_t.value["samples_per_s"], peer_t.value["samples_per_s"],
                               "pytorch-forecasting TimeSeriesDataSet + DataLoader", "samples/s"))
    return results


def main(argv: list[str] | None = None) -> None:
    parser = scale_parser(__doc__, days=5000)
    parser.add_argument("--features", type=int, default=32)
    parser.add_argument("--context", type=int, default=128)
    parser.add_argument("--peer-symbols", type=int, default=50)
    args = parser.parse_args(argv)
    results = run(args.symbols, args.days, args.features, args.context, peer_symbols=args.peer_symbols)
    print_results(results)


if __name__ == "__main__":
    main()
