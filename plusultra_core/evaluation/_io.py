"""Atomic file writes for reports and fold results: temp name in the same directory, then rename.

``os.replace`` is atomic within one file system, so a killed run leaves the old file or the new
one, never half of one. Several files are staged first and renamed only when all are written.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Callable

_TMP_SUFFIX = ".tmp"


def _temp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{uuid.uuid4().hex}{_TMP_SUFFIX}")


def write_files_atomically(writers: dict[Path, Callable[[Path], None]]) -> list[Path]:
    """Run each ``writer(temp_path)`` and then rename every temp file onto its final path.

    If any writer fails, every temp file is removed and no final file is touched.
    """
    staged: list[tuple[Path, Path]] = []
    try:
        for final, writer in writers.items():
            final.parent.mkdir(parents=True, exist_ok=True)
            tmp = _temp_name(final)
            staged.append((tmp, final))
            writer(tmp)
    except BaseException:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        raise
    for tmp, final in staged:
        os.replace(tmp, final)
    return [final for _, final in staged]


def bytes_writer(payload: bytes) -> Callable[[Path], None]:
    """A writer for `write_files_atomically` that writes ``payload`` and fsyncs it."""
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
    return write


def text_writer(text: str) -> Callable[[Path], None]:
    """A writer for UTF-8 text."""
    return bytes_writer(text.encode("utf-8"))
