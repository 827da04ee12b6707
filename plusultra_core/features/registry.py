"""`FeatureRegistry`: the catalogue of features, selection by name or tag, and its docs table.

One process-wide `DEFAULT_REGISTRY` is filled by the family modules in
``plusultra_core.features.families`` when ``plusultra_core.features`` is imported.
"""

from __future__ import annotations

import difflib
from typing import Callable, Iterable

from plusultra_core.errors import ConfigError
from plusultra_core.features.spec import FeatureFn, FeatureSpec

# Raw panel columns a feature may depend on; a feature may not take one of these names.
RAW_COLUMNS = ("open", "high", "low", "close", "volume")
RAW_PREFIXES = ("ind_", "mkt_")


def is_raw_column(name: str) -> bool:
    """True for panel columns (OHLCV, ``ind_*``, ``mkt_*``) as opposed to feature names."""
    return name in RAW_COLUMNS or name.startswith(RAW_PREFIXES)


class FeatureRegistry:
    """Ordered catalogue of `FeatureSpec` by name (registration order is the output order)."""

    def __init__(self) -> None:
        self._specs: dict[str, FeatureSpec] = {}

    # -- registration ----------------------------------------------------------------------
    def register(self, spec: FeatureSpec | None = None, /, *, name: str | None = None,
                 depends_on: Iterable[str] = (), lookback: int = 0, tags: Iterable[str] = (),
                 description: str | None = None, cross_sectional: bool = False):
        """Register a spec, or (keyword form) return a decorator that registers a function.

        ``registry.register(FeatureSpec(...))`` or::

            @registry.register(name="ret_1d", depends_on=["close"], lookback=1, tags=["returns"])
            def ret_1d(ctx): ...

        ``cross_sectional=True`` marks a feature that compares symbols at the same timestamp
        (see `FeatureSpec`). The decorator form uses the function's docstring first line when
        ``description`` is omitted, and returns the function unchanged. Raises `ConfigError` on
        a duplicate name, a name that shadows a raw column, or a negative lookback.
        """
        if spec is not None:
            return self._add(spec)

        def decorator(fn: FeatureFn) -> FeatureFn:
            doc = (fn.__doc__ or "").strip().splitlines()
            self._add(FeatureSpec(name=name or fn.__name__, fn=fn, depends_on=tuple(depends_on),
                                  lookback=lookback, tags=tuple(tags),
                                  description=description or (doc[0] if doc else ""),
                                  cross_sectional=cross_sectional))
            return fn
        return decorator

    def _add(self, spec: FeatureSpec) -> FeatureSpec:
        if spec.name in self._specs:
            raise ConfigError(f"feature {spec.name!r} is already registered")
        if is_raw_column(spec.name):
            raise ConfigError(f"feature name {spec.name!r} shadows a raw panel column "
                              f"({', '.join(RAW_COLUMNS)}, ind_*, mkt_*)")
        if spec.lookback < 0:
            raise ConfigError(f"feature {spec.name!r}: lookback must be >= 0, got {spec.lookback}")
        self._specs[spec.name] = spec
        return spec

    # -- lookup ----------------------------------------------------------------------------
    def __contains__(self, name: str) -> bool:
        return name in self._specs

    def __len__(self) -> int:
        return len(self._specs)

    def __iter__(self):
        return iter(self._specs.values())

    @property
    def names(self) -> list[str]:
        """All feature names in registration order."""
        return list(self._specs)

    @property
    def tags(self) -> list[str]:
        """All tags in first-seen order."""
        return list(dict.fromkeys(t for s in self._specs.values() for t in s.tags))

    def get(self, name: str) -> FeatureSpec:
        """The spec called ``name``; unknown names raise `ConfigError` with close matches."""
        if name not in self._specs:
            raise ConfigError(_unknown("feature", [name], self.names))
        return self._specs[name]

    def select(self, names: Iterable[str] | None = None,
               tags: Iterable[str] | None = None) -> list[FeatureSpec]:
        """Features named in ``names`` plus those carrying any of ``tags``, in registry order.

        With neither (both ``None``), every feature. Unknown names or tags raise one `ConfigError`
        that lists each with its close matches; so does an explicitly *empty* list, which
        would otherwise select nothing or, once a caller reads it as "not given", everything.
        """
        if names is None and tags is None:
            return list(self._specs.values())
        names, tags = _as_list(names), _as_list(tags)
        problems = [f"feature {what} is an empty list: name at least one, or pass None (in a config: "
                    "remove the key)" for what, given in (("names", names), ("tags", tags)) if given == []]
        names, tags = names or [], tags or []
        bad_names = [n for n in names if n not in self._specs]
        if bad_names:
            problems.append(_unknown("feature", bad_names, self.names))
        known_tags = set(self.tags)
        bad_tags = [t for t in tags if t not in known_tags]
        if bad_tags:
            problems.append(_unknown("feature tag", bad_tags, self.tags))
        if problems:
            raise ConfigError("; ".join(problems))
        wanted, wanted_tags = set(names), set(tags)
        return [s for s in self._specs.values() if s.name in wanted or wanted_tags & set(s.tags)]

    # -- documentation -----------------------------------------------------------------------
    def describe(self, names: Iterable[str] | None = None) -> str:
        """Markdown table: name, family/tags, lookback, depends on, description."""
        specs = self.select(names) if names is not None else list(self._specs.values())
        lines = ["| name | family / tags | lookback | depends on | description |",
                 "|---|---|---:|---|---|"]
        for s in specs:
            deps = ", ".join(f"`{d}`" for d in s.depends_on) or "-"
            desc = s.description.replace("|", "\\|")
            lines.append(f"| `{s.name}` | {' / '.join(s.tags)} | {s.lookback} | {deps} | {desc} |")
        return "\n".join(lines)


def _as_list(value: Iterable[str] | None) -> list[str] | None:
    """``None`` stays ``None`` (not given); a lone string is one name."""
    if value is None:
        return None
    return [value] if isinstance(value, str) else list(value)


def _unknown(kind: str, bad: list[str], known: list[str]) -> str:
    parts = []
    for name in bad:
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
        parts.append(f"{name!r}{hint}")
    return f"unknown {kind}{'s' if len(bad) > 1 else ''}: {', '.join(parts)}"


DEFAULT_REGISTRY = FeatureRegistry()
register: Callable = DEFAULT_REGISTRY.register
