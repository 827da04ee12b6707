"""Checks of a config dataclass's fields that name the field: ``<Class>.<field> must be <what>,
got <value>``. One wording and one idea of "a number" for every config that validates this way
(`SimulatorConfig`, `RLConfig`), so their errors read alike and a bool never passes as a number.
"""

from __future__ import annotations

import math
from typing import Any, Callable

from plusultra_core.errors import ConfigError


def is_number(value: Any) -> bool:
    """A finite ``int`` or ``float``, never a bool (``True`` is an ``int`` to Python)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def require(config: Any, name: str, ok: Callable[[Any], bool], what: str) -> None:
    """Raise `ConfigError` naming ``<type of config>.<name>`` and ``what`` it must be, unless
    ``ok`` holds for the field's value."""
    value = getattr(config, name)
    if not ok(value):
        raise ConfigError(f"{type(config).__name__}.{name} must be {what}, got {value!r}")
