"""`WideContext`: the long panel pivoted once into wide ``[L, S]`` matrices for vectorised math.

Layout ("compact", top-aligned): column ``s`` holds symbol ``s``'s own bars in time order, row
``i`` being its ``i``-th bar; shorter histories are NaN-padded at the bottom. Rolling windows are
therefore counted in *the symbol's own bars* (exactly what ``ta`` or pandas do per symbol), a
holiday of one symbol never opens a hole in another, and every symbol's warm-up starts at row 0.
Cross-sectional features that compare symbols at the same timestamp move values to a
date-aligned grid ``[D, S]`` with `to_grid` and back with `from_grid`.

All pivots are integer scatter/gather (no Python loop over rows or symbols).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from plusultra_core.data.panel_index import check_panel_index

PANEL_TABLE = "panel"  # name used in validation errors about the input panel
# Wide matrices have at least this many columns (an all-NaN one pads a single-symbol panel). With
# one column, the trailing-window views kernels reduce over are contiguous and numpy takes other
# loops (pairwise sums, another FFT path) whose last bits differ: a symbol's values would then
# depend on whether it is computed alone (a chunk of one symbol) or beside others.
MIN_COLUMNS = 2


class _Computed:
    """The features computed so far (``_cache``) and shared intermediates (``_memo``)."""

    _cache: dict[str, np.ndarray]
    _memo: dict[str, np.ndarray]

    def put(self, name: str, values: np.ndarray) -> None:
        """Store a computed feature for later features to read."""
        self._cache[name] = values

    def memo(self, key: str, compute) -> np.ndarray:
        """An intermediate shared by several features (e.g. true range), computed once."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def drop(self, name: str) -> None:
        """Free a cached matrix no later feature needs."""
        self._cache.pop(name, None)


class WideContext(_Computed):
    """Wide view of a long panel, plus a cache of the features computed so far.

    Args:
        panel: long DataFrame with MultiIndex ``(timestamp, symbol)``; its numeric columns are
            pivoted lazily, on first ``ctx[name]``.
    """

    def __init__(self, panel: pd.DataFrame):
        check_panel_index(panel.index, PANEL_TABLE)
        self.panel = panel
        index = panel.index
        ts = index.get_level_values(0)
        self.timestamps = np.asarray(ts, dtype="datetime64[ns]")              # [N]
        # The MultiIndex already holds factorised levels: reuse its codes (no hashing of N
        # strings), re-numbered so symbols and dates are in sorted order.
        sym_codes, self.symbols = _sorted_codes(index, 1)                     # [N], [S]
        date_codes, self.dates = _sorted_codes(index, 0)                      # [N], [D]
        # Number each row within its symbol: a stable sort by symbol keeps time order when the
        # panel is sorted by timestamp as the contract says; otherwise sort fully.
        if len(date_codes) < 2 or bool((np.diff(date_codes) >= 0).all()):
            order = np.argsort(sym_codes, kind="stable")
        else:
            order = np.lexsort((date_codes, sym_codes))
        counts = np.bincount(sym_codes, minlength=len(self.symbols))
        starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
        pos = np.empty(len(order), dtype=np.int64)
        pos[order] = np.arange(len(order)) - starts[sym_codes[order]]
        self.n_rows = int(counts.max()) if len(counts) else 0                 # L
        self.n_cols = max(len(self.symbols), MIN_COLUMNS)                     # S (+ NaN padding)
        self.row = pos                                                       # [N] row in [L, S]
        self.col = sym_codes.astype(np.int64)                                 # [N] column
        self.date_row = date_codes.astype(np.int64)                           # [N] row in [D, S]
        self.present = np.zeros((self.n_rows, self.n_cols), dtype=bool)
        self.present[self.row, self.col] = True                               # [L, S] real bars
        self._cache: dict[str, np.ndarray] = {}
        self._memo: dict[str, np.ndarray] = {}

    # -- layout ---------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int]:
        """``(L, S)``: rows of the longest symbol history × number of symbols (at least
        `MIN_COLUMNS`; padding columns are all NaN)."""
        return self.n_rows, self.n_cols

    def scatter(self, values: np.ndarray) -> np.ndarray:
        """Long ``[N]`` float values -> wide ``[L, S]`` float64 (NaN padding)."""
        out = np.full(self.shape, np.nan)
        out[self.row, self.col] = values
        return out

    def gather(self, wide: np.ndarray) -> np.ndarray:
        """Wide ``[L, S]`` -> long ``[N]`` in the panel's row order."""
        return wide[self.row, self.col]

    def to_grid(self, wide: np.ndarray) -> np.ndarray:
        """Compact ``[L, S]`` -> date-aligned ``[D, S]`` (NaN where a symbol has no bar)."""
        grid = np.full((len(self.dates), self.n_cols), np.nan)
        grid[self.date_row, self.col] = wide[self.row, self.col]
        return grid

    def from_grid(self, grid: np.ndarray) -> np.ndarray:
        """Date-aligned ``[D, S]`` -> compact ``[L, S]``."""
        out = np.full(self.shape, np.nan)
        out[self.row, self.col] = grid[self.date_row, self.col]
        return out

    def per_date(self, values: np.ndarray) -> np.ndarray:
        """Values given once per unique date ``[D]`` (e.g. calendar parts) -> wide ``[L, S]``."""
        return self.scatter(np.asarray(values, dtype=np.float64)[self.date_row])

    def wide_timestamps(self) -> np.ndarray:
        """``[L, S]`` datetime64[ns] of each bar (NaT in the padding)."""
        out = np.full(self.shape, np.datetime64("NaT"), dtype="datetime64[ns]")
        out[self.row, self.col] = self.timestamps
        return out

    # -- values ---------------------------------------------------------------------------
    def __contains__(self, name: str) -> bool:
        return name in self._cache or name in self.panel.columns

    def __getitem__(self, name: str) -> np.ndarray:
        """A raw column or an already computed feature as ``[L, S]`` float64."""
        if name not in self._cache:
            if name not in self.panel.columns:
                raise KeyError(f"{name!r} is neither a panel column nor a computed feature")
            values = pd.to_numeric(self.panel[name], errors="coerce").to_numpy(np.float64,
                                                                                 na_value=np.nan)
            self._cache[name] = self.scatter(values)
        return self._cache[name]



def _sorted_codes(index: pd.MultiIndex, level: int) -> tuple[np.ndarray, pd.Index]:
    """Codes of one index level renumbered 0..K-1 in sorted order of the used values."""
    codes = np.asarray(index.codes[level], dtype=np.int64)
    values = index.levels[level]
    used = np.zeros(len(values), dtype=bool)
    used[codes] = True
    kept = np.flatnonzero(used)
    order = np.argsort(np.asarray(values[kept]), kind="stable")     # small: one per level value
    remap = np.empty(len(values), dtype=np.int64)
    remap[kept[order]] = np.arange(len(kept))
    return remap[codes], values[kept[order]]


class GridContext(_Computed):
    """A universe on its date-aligned grid ``[D, S]``: where cross-sectional features run when the
    universe comes in chunks of symbols (`FeaturePipeline.universe_features`).

    Cross-sectional features use values at ``t`` only (they move to the grid, compare symbols per
    row, and move back), so here `to_grid` and `from_grid` are identities and their inputs are
    given as grids. Columns are the universe's symbols (at least `MIN_COLUMNS`, as in
    `WideContext.to_grid`); rows are every date any of them has a bar.
    """

    def __init__(self, dates: pd.DatetimeIndex, symbols: pd.Index, grids: dict[str, np.ndarray]):
        self.dates, self.symbols = dates, symbols
        self.n_cols = max(len(symbols), MIN_COLUMNS)
        self._cache = dict(grids)
        self._memo: dict[str, np.ndarray] = {}

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.dates), self.n_cols

    def to_grid(self, grid: np.ndarray) -> np.ndarray:
        return grid

    def from_grid(self, grid: np.ndarray) -> np.ndarray:
        return grid

    def per_date(self, values: np.ndarray) -> np.ndarray:
        return np.repeat(np.asarray(values, dtype=np.float64)[:, None], self.n_cols, axis=1)

    def __contains__(self, name: str) -> bool:
        return name in self._cache

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._cache:
            raise KeyError(f"{name!r} is not an input of the cross-sectional features on this grid")
        return self._cache[name]
