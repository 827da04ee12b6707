"""One resource per external thing: the user's market database and the partition store."""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import Field

from plusultra_core.data.sharding import ShardingConfig, assign_shards


class MarketDatabase(ConfigurableResource):
    """The user's SQLite market database (read-only input)."""

    path: str = Field(description="Path of the SQLite market database.")
    shard_mode: str = Field(default="symbol", description="symbol | sector | hash: how symbols map to partitions.")
    shard_buckets: int = Field(default=32, description="Number of hash buckets when shard_mode is hash.")

    def dataset(self):
        from plusultra_core.data.sqlite_dataset import SQLiteMarketDataset

        return SQLiteMarketDataset(self.path)

    def shard_map(self, dataset=None) -> dict[str, str]:
        """``symbol -> shard`` for every tradable symbol in the `assets` table."""
        dataset = dataset or self.dataset()
        return assign_shards(dataset.assets(), ShardingConfig(self.shard_mode, self.shard_buckets), where=dataset.path)


class PartitionStore(ConfigurableResource):
    """The artifact store under one root: Parquet partitions, checkpoints, reports (layout in
    `plusultra_pipeline.layout`; atomic writes; DuckDB reads)."""

    root: str = Field(description="Root directory (or URI) of the store.")

    def store(self):
        from plusultra_core.data.store import ParquetStore

        return ParquetStore(self.root)

    def location(self, asset: str, partition: str | None = None):
        """Where ``asset``'s ``partition`` lives (`layout.location`: the one owner of store paths)."""
        from plusultra_pipeline.layout import location

        return location(self.root, asset, partition)
