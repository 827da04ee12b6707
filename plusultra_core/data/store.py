"""Partitioned Parquet store: one file per asset partition, atomic writes, one-query reads.

Layout (Hive style, so DuckDB restores partition columns from the path)::

    <root>/<asset>/<dim>=<value>/.../data.parquet
    <root>/<asset>/<dim>=<value>/.../_meta.json      # sidecar: rows, bytes, columns, user metadata

Dimensions are laid out in sorted name order, so ``{"symbol": "A", "date": "2020"}`` and
``{"date": "2020", "symbol": "A"}`` name the same directory (Dagster's multi-partition keys are
sorted the same way).

Every file is written through `plusultra_core.atomic` (temporary name in the partition directory,
fsync, ``os.replace``): a run killed mid-write leaves the old partition or the new one, never half
of one. The user metadata is also embedded in the Parquet footer together with a write id;
``read_metadata`` falls back to the footer if a crash landed between the two renames, so data and
metadata can never disagree.

Reads across many partitions are one DuckDB ``read_parquet([...], hive_partitioning=true)`` query;
``where`` is an SQL predicate written by the caller's code and every value in it is bound through
``params`` (never formatted into the string). Partition values come back as strings.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from plusultra_core import atomic
from plusultra_core.errors import PartitionKeyError

DATA_FILE = "data.parquet"
META_FILE = "_meta.json"
_FOOTER_KEY = b"plusultra"  # key of our JSON blob inside the Parquet key-value metadata
_DIM_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_FORBIDDEN_IN_VALUE = ("/", "\\", "\x00", "=", "..")


@dataclass(frozen=True)
class StoredPartition:
    """What one ``ParquetStore.write`` produced."""

    path: Path
    rows: int
    bytes: int


def _check_name(kind: str, name: object, where: str) -> str:
    """A path component (asset name or partition value) that cannot escape its directory."""
    if not isinstance(name, str) or not name:
        raise PartitionKeyError(f"{kind} {name!r} for {where} must be a non-empty string")
    bad = [tok for tok in _FORBIDDEN_IN_VALUE if tok in name]
    if bad or name in (".",) or name != name.strip():
        raise PartitionKeyError(
            f"{kind} {name!r} for {where} is not a safe path component "
            f"(no path separators, '..', '=', NUL or surrounding spaces)"
        )
    return name


def _json_default(value: Any) -> Any:
    """JSON encoding for the scalar types metadata commonly holds (timestamps, numpy numbers)."""
    if isinstance(value, (pd.Timestamp, _dt.datetime, _dt.date)):
        return value.isoformat()
    if isinstance(value, np.datetime64):
        return str(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"metadata value of type {type(value).__name__} is not JSON-serialisable")


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class ParquetStore:
    """Partitioned Parquet files under ``root``, written atomically and read with DuckDB.

    Args:
        root: directory of the store (created on first write).
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    # ------------------------------------------------------------------ paths
    def _normalise(self, asset: str, partition: Mapping[str, str]) -> list[tuple[str, str]]:
        _check_name("asset name", asset, "the store")
        if not isinstance(partition, Mapping):
            raise PartitionKeyError(f"partition of asset {asset!r} must be a mapping dim -> value, got {partition!r}")
        items = []
        for dim in sorted(partition):
            if not isinstance(dim, str) or not _DIM_RE.match(dim):
                raise PartitionKeyError(
                    f"partition dimension {dim!r} of asset {asset!r} must be an identifier ([A-Za-z_][A-Za-z0-9_]*)"
                )
            items.append((dim, _check_name("partition value", partition[dim], f"{asset}[{dim}]")))
        return items

    def partition_dir(self, asset: str, partition: Mapping[str, str]) -> Path:
        """Directory holding one partition (validated; not necessarily existing)."""
        parts = [f"{dim}={value}" for dim, value in self._normalise(asset, partition)]
        return self.root.joinpath(asset, *parts)

    def path(self, asset: str, partition: Mapping[str, str]) -> Path:
        """Path of the Parquet file of one partition."""
        return self.partition_dir(asset, partition) / DATA_FILE

    # ------------------------------------------------------------------ write
    def _write_table(self, table: pa.Table, path: Path) -> None:
        """Write ``table`` to ``path`` (a temporary name). Separate so crash tests can subclass it."""
        pq.write_table(table, path, compression="zstd")

    def write(self, asset: str, partition: Mapping[str, str], df: pd.DataFrame,
              metadata: dict | None = None) -> StoredPartition:
        """Atomically replace one partition with ``df`` (and its ``_meta.json`` sidecar).

        A non-default index is stored as ordinary columns (``reset_index``). A column named like a
        partition dimension is dropped when it holds only the partition value (the path restores
        it on read) and rejected otherwise, since DuckDB would silently shadow it with the path value.

        Raises:
            PartitionKeyError: bad asset name, dimension or value; a column contradicting the key.
            TypeError: ``metadata`` is not JSON-serialisable (nothing is written).
        """
        items = self._normalise(asset, partition)
        where = f"{asset}[{', '.join(f'{d}={v}' for d, v in items)}]"
        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"{where}: expected a pandas DataFrame, got {type(df).__name__}")
        if not isinstance(df.index, pd.RangeIndex) or df.index.name is not None:
            df = df.reset_index()
        drop = []
        for dim, value in items:
            if dim in df.columns:
                col = df[dim]
                if len(col) and not (col.astype(str) == value).all():
                    raise PartitionKeyError(
                        f"{where}: column {dim!r} holds values other than the partition value {value!r}; "
                        f"rename the column or the partition dimension"
                    )
                drop.append(dim)
        if drop:
            df = df.drop(columns=drop)

        write_id = uuid.uuid4().hex
        user_meta = dict(metadata or {})
        try:
            # Serialise first: a bad value must fail before anything touches the disk.
            footer = json.dumps({"write_id": write_id, "metadata": user_meta}, default=_json_default)
        except TypeError as exc:
            raise TypeError(f"{where}: metadata {exc}") from exc
        table = pa.Table.from_pandas(df, preserve_index=False)
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), _FOOTER_KEY: footer.encode()})

        directory = self.partition_dir(asset, partition)
        final = directory / DATA_FILE
        with atomic.staged_path(final) as tmp:
            self._write_table(table, tmp)
            n_bytes = tmp.stat().st_size
            sidecar = {
                "write_id": write_id,
                "asset": asset,
                "partition": dict(items),
                "rows": table.num_rows,
                "bytes": n_bytes,
                "columns": table.schema.names,
                "written_at": _dt.datetime.now(_dt.timezone.utc).isoformat(),
                "metadata": user_meta,
            }
            meta_payload = json.dumps(sidecar, default=_json_default, indent=1)
        # A crash here leaves new data beside the old sidecar: read_metadata checks the write id.
        atomic.write_file(directory / META_FILE, meta_payload)
        return StoredPartition(path=final, rows=table.num_rows, bytes=n_bytes)

    # ------------------------------------------------------------------ listing
    def exists(self, asset: str, partition: Mapping[str, str]) -> bool:
        """Whether the partition's data file exists."""
        return self.path(asset, partition).is_file()

    def list_partitions(self, asset: str) -> list[dict]:
        """Every stored partition of ``asset`` as ``{dim: value}`` dicts, sorted by path."""
        base = self.root / _check_name("asset name", asset, "the store")
        if not base.is_dir():
            return []
        out = []
        for file in sorted(base.rglob(DATA_FILE)):
            rel = file.parent.relative_to(base).parts
            if all("=" in p for p in rel):
                out.append(dict(p.split("=", 1) for p in rel))
        return out

    def read_metadata(self, asset: str, partition: Mapping[str, str]) -> dict | None:
        """The sidecar of a partition (``rows``, ``bytes``, ``columns``, ``metadata``...), or None.

        If the sidecar is missing or belongs to another write than the data file (a crash between
        the two renames), the metadata embedded in the Parquet footer is returned instead.
        """
        directory = self.partition_dir(asset, partition)
        data = directory / DATA_FILE
        if not data.is_file():
            return None
        sidecar = None
        try:
            sidecar = json.loads((directory / META_FILE).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            pass
        footer = self._footer(data)
        if sidecar is not None and (footer is None or sidecar.get("write_id") == footer.get("write_id")):
            return sidecar
        info = pq.ParquetFile(data).metadata
        return {
            "write_id": footer.get("write_id") if footer else None,
            "asset": asset,
            "partition": dict(self._normalise(asset, partition)),
            "rows": info.num_rows,
            "bytes": data.stat().st_size,
            "columns": info.schema.to_arrow_schema().names,
            "metadata": footer.get("metadata", {}) if footer else {},
        }

    @staticmethod
    def _footer(path: Path) -> dict | None:
        meta = pq.read_schema(path).metadata or {}
        blob = meta.get(_FOOTER_KEY)
        return json.loads(blob) if blob else None

    # ------------------------------------------------------------------ read
    def _files(self, asset: str, partitions: Sequence[Mapping[str, str]] | None) -> list[str]:
        if partitions is None:
            partitions = self.list_partitions(asset)
        files = []
        for part in partitions:
            path = self.path(asset, part)
            if not path.is_file():
                raise PartitionKeyError(f"partition {dict(part)!r} of asset {asset!r} is not in the store at {self.root}")
            files.append(str(path))
        return files

    def _query(self, files: list[str], columns: Sequence[str] | None, where: str | None,
               params: Mapping[str, Any] | Sequence[Any] | None, order_by: Sequence[str] | None):
        import duckdb

        select = "*" if columns is None else ", ".join(_quote_ident(c) for c in columns)
        # $__files is a bound list: file paths are never formatted into the SQL text either.
        sql = (f"SELECT {select} FROM read_parquet($__files, hive_partitioning=true, "
               f"hive_types_autocast=false, union_by_name=true)")
        if where:
            sql += f" WHERE {where}"
        if order_by:
            sql += " ORDER BY " + ", ".join(_quote_ident(c) for c in order_by)
        if params is None:
            bound: dict[str, Any] = {}
        elif isinstance(params, Mapping):
            bound = dict(params)
        else:
            raise TypeError("params must be a mapping of $name -> value (named parameters)")
        bound["__files"] = files
        con = duckdb.connect()
        try:
            return con, con.execute(sql, bound)
        except duckdb.Error:
            con.close()
            raise

    def read(self, asset: str, partitions: list[dict] | None = None, columns: Sequence[str] | None = None,
             where: str | None = None, params: Mapping[str, Any] | None = None,
             order_by: Sequence[str] | None = None) -> pd.DataFrame:
        """Read partitions (all if None) in ONE DuckDB query; partition dims come back as str columns.

        Args:
            where: SQL predicate using ``$name`` placeholders, e.g. ``"timestamp >= $start"``.
            params: values of the placeholders (bound by DuckDB, never formatted).
            order_by: column names to sort by; otherwise rows come in file order then row order.
        """
        files = self._files(asset, partitions)
        if not files:
            return pd.DataFrame(columns=list(columns or []))
        con, cur = self._query(files, columns, where, params, order_by)
        try:
            return cur.df()
        finally:
            con.close()

