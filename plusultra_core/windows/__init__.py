"""Window layer: feature panel -> window frame -> zero-copy sliding windows, purged splits, block batches.

- ``build_window_frame``: float32 features + return stream + valid flag, sorted by (symbol, time).
- ``SlidingWindowDataset``: strided views over one contiguous [N, F] array; one gather per batch.
- ``time_split``: walk-forward split with a purge gap of at least the horizon.
- ``TimeContiguousBatchSampler``: batches of time-contiguous single-symbol blocks for path losses.
"""

from plusultra_core.lazy_exports import lazy_exports

# name -> submodule, loaded on first use: the history assets build window frames without torch,
# which only the dataset and the sampler need
_EXPORTS = {"build_window_frame": "frame", "SlidingWindowDataset": "sliding",
            "TimeContiguousBatchSampler": "sampler", "time_split": "split"}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
