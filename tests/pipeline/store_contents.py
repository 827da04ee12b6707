"""What a store holds, independent of when it was written: for comparing a store left by a
killed-and-resumed or incremental run with a clean build.

Two writes of the same partition differ only in their write identity (``write_id``,
``written_at``, in the sidecar and the Parquet footer), so Parquet tables compare by content
(schema without footer metadata, then every value) and sidecars without those two keys; every
other file compares by its bytes. The store's writer lock file is not content.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from plusultra_pipeline.run_lock import STORE_LOCK

VOLATILE = ("write_id", "written_at")  # differ between any two writes of the same content


def _table_digest(path: Path) -> str:
    table = pq.read_table(path)
    table = table.replace_schema_metadata(None)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return hashlib.sha256(sink.getvalue().to_pybytes()).hexdigest()


def store_contents(root: str | Path) -> dict[str, object]:
    """``relative path -> content`` of every file under ``root`` (see the module docstring)."""
    root = Path(root)
    out: dict[str, object] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if path.name == STORE_LOCK:
            continue
        if path.suffix == ".parquet":
            out[rel] = _table_digest(path)
        elif path.name == "_meta.json":
            out[rel] = {k: v for k, v in json.loads(path.read_text()).items() if k not in VOLATILE}
        else:
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def differences(a: dict, b: dict) -> list[str]:
    """Readable differences between two `store_contents` (empty when equal)."""
    diffs = [f"only in first: {k}" for k in sorted(set(a) - set(b))]
    diffs += [f"only in second: {k}" for k in sorted(set(b) - set(a))]
    diffs += [f"differs: {k}" for k in sorted(set(a) & set(b)) if a[k] != b[k]]
    return diffs
