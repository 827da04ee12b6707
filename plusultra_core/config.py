"""Typed configuration from YAML: dataclasses built with ``Cls(**params)`` so unknown keys fail.

`load_config(Cls, source)` accepts a path or a mapping. Nested dataclass fields are built
recursively. Every value is checked against its field's annotation (``str``, ``int``, ``float``,
``bool``, ``X | None``, ``tuple[X, ...]``, ``dict``) before the dataclass sees it, so
``lr: fast`` fails as "train.yaml [optim].lr: expected a number, got 'fast'" instead of a
comparison error deep inside. Every error names the offending key and the file (or
``<mapping>``) it came from.
YAML files may name a ``base:`` file (relative to themselves) whose keys they override, so small
override files state only what differs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from pathlib import Path
from typing import Any, Mapping, TypeVar

import yaml

from plusultra_core.errors import ConfigError

T = TypeVar("T")


class _DatesAsText(yaml.SafeLoader):
    """YAML's safe loader, but ``2018-01-01`` unquoted stays the text it is: every date setting is
    a string field checked where it is defined, so an impossible ``2018-02-30`` is reported with
    its key (YAML's own date type would fail while parsing, naming neither key nor line)."""


_DatesAsText.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, resolving an optional ``base:`` chain (child keys win, deep-merged)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.load(path.read_text(), Loader=_DatesAsText) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc

    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at top level, got {type(data).__name__}")
    base = data.pop("base", None)
    if base is not None:
        base_data = read_yaml(path.parent / base)
        data = deep_merge(base_data, data)
    return data


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``base`` updated by ``override``; nested mappings merge, everything else replaces."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_config(cls: type[T], source: str | Path | Mapping[str, Any], *,
                section: str | None = None) -> T:
    """Build dataclass ``cls`` from a YAML path or a mapping; unknown keys raise `ConfigError`.

    ``section`` picks one top-level key of the file (e.g. ``"model"``).
    """
    if isinstance(source, Mapping):
        data, where = dict(source), "<mapping>"
    else:
        data, where = read_yaml(source), str(source)
    if section is not None:
        if section not in data:
            raise ConfigError(f"{where}: missing section '{section}'")
        data = data[section]
        where = f"{where} [{section}]"
    return from_dict(cls, data, where)


def _child(where: str, key: str) -> str:
    """``file: a.b.key``: the file once, then the dotted key path inside it."""
    return f"{where}.{key}" if ": " in where else f"{where}: {key}"


def from_dict(cls: type[T], data: Mapping[str, Any], where: str = "<mapping>") -> T:
    """Build a (possibly nested) dataclass from a mapping, failing loudly on unknown keys."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping for {cls.__name__}, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(repr(k) for k in unknown)} for {cls.__name__}; "
            f"known keys: {', '.join(sorted(fields))}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in data.items():
        hint = hints.get(key)
        if dataclasses.is_dataclass(hint) and not isinstance(value, hint):
            value = from_dict(hint, value, _child(where, key))
        else:
            value = check_type(hint, value, _child(where, key))
        kwargs[key] = value
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: invalid {cls.__name__}: {exc}") from exc


_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
               dict: "a mapping"}


def check_type(hint: Any, value: Any, where: str) -> Any:
    """``value`` checked against annotation ``hint`` (lists become tuples for tuple fields).

    Unknown annotations (``Any``, classes) pass unchecked: their dataclass validates them.
    ``int`` is accepted for ``float``; ``bool`` is never accepted for a number.
    """
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        errors = []
        for option in options:
            try:
                return check_type(option, value, where)
            except ConfigError as exc:
                errors.append(exc)
        if len(options) == 1:
            raise errors[0]
        raise ConfigError(f"{where}: {value!r} matches none of {hint}")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r} ({type(value).__name__})")
        if len(args) == 2 and args[1] is Ellipsis:          # tuple[X, ...]: any length of X
            args = (args[0],) * len(value)
        elif args and len(args) != len(value):              # tuple[X, Y]: exactly these
            raise ConfigError(f"{where}: expected a list of {len(args)} items, got {list(value)!r}")
        if not args:                                        # bare tuple: unchecked items
            return tuple(value)
        return tuple(check_type(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
    if origin in (dict, Mapping) or hint is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {value!r} ({type(value).__name__})")
        return value
    if hint in (int, float, str, bool):
        ok = (isinstance(value, bool) if hint is bool
              else not isinstance(value, bool) and (
                  isinstance(value, (int, float)) if hint is float else isinstance(value, hint)))
        if not ok:
            raise ConfigError(f"{where}: expected {_TYPE_NAMES[hint]}, got {value!r} ({type(value).__name__})")
        return value  # ints stay ints: config hashes (code versions) do not move
    return value


def to_dict(obj: Any) -> dict[str, Any]:
    """Dataclass to plain JSON-able dict (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(obj), default=str))


def config_hash(obj: Any) -> str:
    """Stable short hash of a dataclass or mapping, for lineage."""
    payload = to_dict(obj) if dataclasses.is_dataclass(obj) else obj
    blob = json.dumps(payload, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
