"""Cross-sectional ranks: each symbol's percentile among the symbols trading at the same time.

Values move to a date-aligned grid ``[D, S]``, are ranked across symbols per row (average
ranks for ties, NaNs left out) and scaled to [0, 1]: (rank - 1) / (n - 1), 0.5 when a row has a
single symbol. These are the only features that mix symbols, by design; each uses only values
at ``t``, which are causal themselves. They are registered ``cross_sectional=True``: given a
universe panel (every tradable symbol), `FeaturePipeline.transform_panel` ranks over it, so a
symbol's rank does not depend on which other symbols are computed in the same call.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from plusultra_core.features.registry import DEFAULT_REGISTRY, register


# Rows (dates) ranked at once: the ranking holds ~10 temporaries of its rows' size, so blocks
# bound them (~20 MB at 1,000 symbols) while a 5000 x 2000 grid would need ~800 MB at once.
RANK_BLOCK_ROWS = 256


def cross_sectional_rank(grid: np.ndarray) -> np.ndarray:
    """Percentile rank in [0, 1] across axis 1 of ``grid`` [D, S]; ties share their mean rank.

    Rows are independent: ranked `RANK_BLOCK_ROWS` at a time (a loop over row blocks only).
    """
    out = np.empty(grid.shape)
    for r0 in range(0, grid.shape[0], RANK_BLOCK_ROWS):
        out[r0:r0 + RANK_BLOCK_ROWS] = _rank_rows(grid[r0:r0 + RANK_BLOCK_ROWS])
    return out


def _rank_rows(grid: np.ndarray) -> np.ndarray:
    """`cross_sectional_rank` of a block of rows: one argsort per row (all rows at once); ties
    are found as equal neighbours in sorted order and averaged with ``bincount`` over tie-group
    ids -- no loop over rows."""
    d, s = grid.shape
    finite = np.isfinite(grid)
    n = finite.sum(axis=1, keepdims=True).astype(np.float64)           # [D, 1]
    keyed = np.where(finite, grid, np.inf)                            # NaNs sort last
    order = np.argsort(keyed, axis=1, kind="stable")                  # [D, S]
    sorted_vals = np.take_along_axis(keyed, order, axis=1)
    new_group = np.ones((d, s), dtype=bool)
    new_group[:, 1:] = sorted_vals[:, 1:] != sorted_vals[:, :-1]      # a row start is always new
    group = np.cumsum(new_group.ravel()) - 1                          # [D*S] tie-group ids
    ordinal = np.broadcast_to(np.arange(1.0, s + 1.0), (d, s)).ravel()
    mean_rank = np.bincount(group, weights=ordinal) / np.bincount(group)
    ranks = np.empty((d, s))
    np.put_along_axis(ranks, order, mean_rank[group].reshape(d, s), axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        pct = np.where(n > 1, (ranks - 1.0) / (n - 1.0), 0.5)
    return np.where(finite, pct, np.nan)


def _rank(ctx, source: str):
    return ctx.from_grid(cross_sectional_rank(ctx.to_grid(ctx[source])))


for _source in ("mom_20", "mom_120", "vol_std_20", "logvol_z_20"):
    register(name=f"xs_rank_{_source}", depends_on=[_source],
             lookback=DEFAULT_REGISTRY.get(_source).lookback, tags=["cross_sectional"],
             cross_sectional=True,
             description=f"cross-sectional percentile rank of {_source} at each timestamp")(
        partial(_rank, source=_source))
