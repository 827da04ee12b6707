"""Window layer: feature panel -> window frame -> zero-copy sliding windows, purged splits, block batches.

- ``build_window_frame``: float32 features + return stream + valid flag, sorted by (symbol, time).
- ``SlidingWindowDataset``: strided views over one contiguous [N, F] array; one gather per batch.
- ``time_split``: walk-forward split with a purge gap of at least the horizon.
- ``TimeContiguousBatchSampler``: batches of time-contiguous single-symbol blocks for path losses.
"""

from plusultra_core.windows.frame import build_window_frame
from plusultra_core.windows.sampler import TimeContiguousBatchSampler
from plusultra_core.windows.sliding import SlidingWindowDataset
from plusultra_core.windows.split import time_split

__all__ = [
    "build_window_frame",
    "SlidingWindowDataset",
    "TimeContiguousBatchSampler",
    "time_split",
]
