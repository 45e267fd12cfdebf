# SPDX-License-Identifier: GPL-2.0-only
"""Compose the arch layer of one kernel profile, once.

For every kernel name with tagged versions (engine.arch.variants) the
profile's version is installed under the kernel name in a subclass made for
that profile, ``Arch[v6.9]`` and so on; a name the profile's kernel lacks
gets a stub that raises MissingEntryPoint. Function bodies never test the
profile to decide which kernel they are: the choice is made here, when the
first Arch of a profile is made, and cached.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, TypeVar

from engine.arch.base import MissingEntryPoint
from engine.arch.profiles import FEATURE_HISTORY, KernelProfile
from engine.arch.variants import Variant, choose, first_row, has_row, variants_of

T = TypeVar("T")

_CLASSES: dict[tuple[type, KernelProfile], type] = {}


def _first_profile(field: str) -> str:
    return first_row(field)[2]


def _missing(name: str, candidates: list[Variant], p: KernelProfile) -> Callable[..., Any]:
    gone = [v.until for v in candidates if v.until is not None and has_row(p, v.until)]
    since = sorted({v.since for v in candidates if v.since is not None},
                   key=lambda f: FEATURE_HISTORY.index(first_row(f)))
    if gone and not since:
        why = f"removed in {_first_profile(gone[0])}"
    elif since:
        lacking = [f for f in since if not has_row(p, f)] or since
        why = f"added in {_first_profile(lacking[0])}"
    else:
        why = "not in this configuration"

    def missing(self: Any, *args: Any, **kw: Any) -> Any:
        raise MissingEntryPoint(f"{name}() does not exist in kernel profile "
                                f"{self.profile.name!r} ({why})")

    missing.__name__ = missing.__qualname__ = f"{name}_missing"
    return missing


def compose(base: type[T], p: KernelProfile) -> type[T]:
    """base with every kernel name bound to profile p's version (cached)."""
    key = (base, p)
    cls = _CLASSES.get(key)
    if cls is None:
        ns: dict[str, Any] = {}
        chosen: dict[str, Variant] = {}
        for name, candidates in variants_of(base).items():
            v = choose(candidates, p)
            if v is None:
                ns[name] = _missing(name, candidates, p)
            else:
                ns[name] = getattr(base, v.attr)
                chosen[name] = v
        ns["LAYER"] = MappingProxyType(chosen)
        ns["__module__"] = base.__module__
        cls = type(f"{base.__name__}[{p.name}]", (base,), ns)
        _CLASSES[key] = cls
    return cls


def describe(layer: Mapping[str, Variant]) -> list[str]:
    """One line per kernel name: the Python function that implements it and its commit."""
    return [f"{name:<36} {v.attr:<44} {v.commit}" for name, v in sorted(layer.items())]
