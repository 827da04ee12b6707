"""Old names of `plusultra_core.atomic`, kept only for ``plusultra_pipeline/assets/evaluation.py``.

That module is being rewritten; once it calls `plusultra_core.atomic.write_files` directly this
file goes. New code imports `plusultra_core.atomic`.
"""

from __future__ import annotations

from plusultra_core.atomic import write_files as write_files_atomically

__all__ = ["text_writer", "write_files_atomically"]


def text_writer(text: str) -> str:
    """The payload for ``text``: `plusultra_core.atomic` writes a ``str`` as UTF-8 itself."""
    return text
