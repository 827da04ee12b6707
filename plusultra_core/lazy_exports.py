"""PEP 562 lazy exports for a package ``__init__``: a name is imported from its submodule on first
use, so importing one light submodule (or the package for one name) does not load the heavy ones
(torch, the booking code) that other names need."""

from __future__ import annotations

import importlib
from typing import Callable


def lazy_exports(package: str, exports: dict[str, str], namespace: dict) -> tuple[Callable, Callable]:
    """``(__getattr__, __dir__)`` for ``package`` whose ``exports`` map name -> submodule; a loaded
    name is cached in the package ``namespace`` (its ``globals()``)."""

    def __getattr__(name: str):
        if name in exports:
            value = getattr(importlib.import_module(f"{package}.{exports[name]}"), name)
            namespace[name] = value
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__
