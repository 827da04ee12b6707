"""The serving tests' tiny checkpoint, reused (one trained per session and directory)."""

from tests.serving.conftest import tiny_checkpoint  # noqa: F401  (a fixture)
