"""Write ``docs/features.md`` from `DEFAULT_REGISTRY.describe()`.

Run ``python -m plusultra_core.features.docs`` after adding or changing a feature; a test fails
while the committed file is stale.
"""

from __future__ import annotations

import sys
from pathlib import Path

from plusultra_core import atomic
from plusultra_core.features import DEFAULT_REGISTRY

DOC_PATH = Path(__file__).resolve().parents[2] / "docs" / "features.md"
REGENERATE = "python -m plusultra_core.features.docs"

HEADER = """# Features

Generated from `DEFAULT_REGISTRY.describe()` by `{cmd}` — do not edit by hand.

Every feature is causal (its value at bar *t* uses bars <= *t* of the same symbol only; the
`cross_sectional` family also compares symbols at the same *t*, always across every tradable
symbol, whatever subset is being computed), scale-free, and computed for all symbols at once on
wide time × symbol matrices. `lookback` is the number of earlier bars a value needs (for
exponential/Wilder smoothing: the warm-up after which older history weighs < 1e-8, below float32
resolution, so training and serving see the same stored values).
Windows count a symbol's own bars. Features whose input columns are absent from the panel
(e.g. `mkt_*` series) are skipped with a log record.

{count} features.

"""


def render() -> str:
    """The full Markdown text of ``docs/features.md``."""
    return HEADER.format(cmd=REGENERATE, count=len(DEFAULT_REGISTRY)) + DEFAULT_REGISTRY.describe() + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write the documentation file (path optional as the only argument)."""
    argv = sys.argv[1:] if argv is None else argv
    path = Path(argv[0]) if argv else DOC_PATH
    atomic.write_file(path, render())  # never a half-written doc
    print(f"wrote {path} ({len(DEFAULT_REGISTRY)} features)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
