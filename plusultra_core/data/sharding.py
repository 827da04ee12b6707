"""Map symbols to the "symbol" partition dimension: one symbol, a sector, or a hash bucket.

Small universes keep one partition per symbol; large ones group symbols into shards so the
partition count (Dagster's per-partition bookkeeping is the dominant cost at scale) stays near
a thousand per history asset. Hash buckets use CRC32, which is stable across processes and
Python versions (unlike ``hash()``).
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

import pandas as pd

from plusultra_core.errors import ConfigError

SHARD_MODES = ("symbol", "sector", "hash")
_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class ShardingConfig:
    """How symbols are grouped into partitions of the ``symbol`` dimension."""

    mode: str = "symbol"   # symbol | sector | hash
    buckets: int = 32      # number of hash buckets when mode == "hash"

    def __post_init__(self):
        if self.mode not in SHARD_MODES:
            raise ConfigError(f"sharding.mode '{self.mode}' is not one of {', '.join(SHARD_MODES)}")
        if self.buckets < 1:
            raise ConfigError(f"sharding.buckets must be >= 1, got {self.buckets}")


def shard_key(value: str) -> str:
    """A partition-safe key (no separators Dagster or the store path would misread)."""
    key = _SAFE.sub("_", str(value)).strip("_")
    return key or "unknown"


def assign_shards(assets: pd.DataFrame, cfg: ShardingConfig, where=None) -> dict[str, str]:
    """``symbol -> shard key`` for the tradable rows of an ``assets`` frame.

    Raises `DataValidationError` (prefixed by ``where``, e.g. the database path) when a tradable
    symbol cannot be a partition key (too long, a path separator, a leading dot): the keys made
    here are registered with Dagster and become store directories, so this is the last point
    where refusing leaves nothing behind.
    """
    from plusultra_core.data.validation import check_usable_symbols

    check_usable_symbols(assets, where)
    frame = assets[assets["tradable"].astype(bool)] if "tradable" in assets else assets
    symbols = frame["symbol"].astype(str)
    if cfg.mode == "symbol":
        shards = symbols.map(shard_key)
    elif cfg.mode == "sector":
        shards = frame["sector"].fillna("unknown").astype(str).map(lambda s: f"sector-{shard_key(s)}")
    else:
        width = len(str(cfg.buckets - 1))
        shards = symbols.map(lambda s: f"bucket-{zlib.crc32(s.encode()) % cfg.buckets:0{width}d}")
    return dict(zip(symbols, shards))


def symbols_by_shard(mapping: dict[str, str]) -> dict[str, list[str]]:
    """Invert `assign_shards`: ``shard -> sorted symbols`` (the history chunks group whole shards)."""
    out: dict[str, list[str]] = {}
    for symbol, shard in mapping.items():
        out.setdefault(shard, []).append(symbol)
    return {k: sorted(v) for k, v in sorted(out.items())}
