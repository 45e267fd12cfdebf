# SPDX-License-Identifier: GPL-2.0-only
"""Whole-function variants of kernel functions, chosen once per kernel profile.

Where a kernel function changed between releases, ptlab keeps one Python
function per version, each written like that version's C, and tags it with
the FEATURE_HISTORY row (engine.arch.profiles) that introduced it::

    @variant("contpte_ptep_get", since="get_early_exit")   # 093ae7a033cf, v6.17
    @arch_call("contpte_ptep_get")
    def contpte_ptep_get_v6_17(self, mm, addr, orig_pte): ...

engine.arch.layer picks, for each kernel name, the one variant whose
conditions hold for the profile and installs it under the kernel name, so
no function body tests the profile to decide which kernel it is.

A variant holds for a profile when the profile has its ``since`` row (None:
from the first release that has the function), lacks its ``until`` row, and
has every row in ``requires``. A profile has a row when the field holds the
row's value: a bool field is set, ``tlb_limit`` is "v6.10". A field with
several rows (``layout``, one per descriptor layout) cannot tag a variant:
it has no one "before" and "after". Among the variants that hold, the one
whose ``since`` row comes latest in FEATURE_HISTORY wins; none holding means
the function does not exist in that profile. Each field is tested on its
own, so a profile with one field flipped (``ptlab crosscheck --features``)
still gets a whole function.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from engine.arch.profiles import FEATURE_HISTORY, KernelProfile

F = TypeVar("F", bound=Callable[..., Any])

# FEATURE_HISTORY order of each field's first row: a later row is a newer change.
_RANK: dict[str, int] = {}
for _i, _row in enumerate(FEATURE_HISTORY):
    _RANK.setdefault(_row[0], _i)


# The value a field's one FEATURE_HISTORY row gives it (True for every bool field).
_VALUE: dict[str, object] = {}
for _row in FEATURE_HISTORY:
    if sum(r[0] == _row[0] for r in FEATURE_HISTORY) == 1:
        _VALUE[_row[0]] = _row[1]


def has_row(p: KernelProfile, field: str) -> bool:
    """Whether profile p carries the change of field's FEATURE_HISTORY row."""
    return bool(getattr(p, field) == _VALUE[field])


def first_row(field: str) -> tuple[str, object, str, str, str]:
    """The FEATURE_HISTORY row that introduced a field: (field, value, first profile, commit, note)."""
    return FEATURE_HISTORY[_RANK[field]]


@dataclass(frozen=True)
class Variant:
    kernel_name: str
    attr: str  # the Python name of the function that implements it
    since: str | None
    until: str | None
    requires: tuple[str, ...]

    def holds(self, p: KernelProfile) -> bool:
        return ((self.since is None or has_row(p, self.since))
                and (self.until is None or not has_row(p, self.until))
                and all(has_row(p, f) for f in self.requires))

    @property
    def rank(self) -> int:
        return -1 if self.since is None else _RANK[self.since]

    @property
    def commit(self) -> str:
        """The FEATURE_HISTORY commit of the row this variant follows."""
        field = self.since or self.until
        if field is None:
            return "as first merged"
        row = first_row(field)
        return row[3] if self.since else f"before {row[3]}"


def variant(kernel_name: str, *, since: str | None = None, until: str | None = None,
            requires: Iterable[str] = ()) -> Callable[[F], F]:
    """Tag a method as one version of the kernel function ``kernel_name``."""
    req = tuple(requires)
    for f in (since, until, *req):
        if f is not None and f not in _RANK:
            raise ValueError(f"{f!r} is not a FEATURE_HISTORY field")
        if f is not None and f not in _VALUE:
            raise ValueError(f"{f!r} has several FEATURE_HISTORY rows: no variant can follow it")

    def deco(fn: F) -> F:
        tags: list[Variant] = list(getattr(fn, "ptlab_variants", ()))
        tags.append(Variant(kernel_name, fn.__name__, since, until, req))
        setattr(fn, "ptlab_variants", tuple(tags))  # noqa: B010 - an attribute mypy does not know
        return fn

    return deco


def variants_of(cls: type) -> dict[str, list[Variant]]:
    """Every tagged variant in cls and its bases, by kernel name."""
    out: dict[str, list[Variant]] = {}
    seen: set[str] = set()
    for klass in cls.__mro__:
        for attr, fn in vars(klass).items():
            if attr in seen:
                continue
            seen.add(attr)
            for v in getattr(fn, "ptlab_variants", ()):
                out.setdefault(v.kernel_name, []).append(v)
    return out


def choose(candidates: list[Variant], p: KernelProfile) -> Variant | None:
    """The variant of one kernel function that profile p runs, or None."""
    held = [v for v in candidates if v.holds(p)]
    if not held:
        return None
    best = max(held, key=lambda v: v.rank)
    if sum(v.rank == best.rank for v in held) > 1:
        raise RuntimeError(f"{best.kernel_name}: more than one variant holds for profile {p.name!r}")
    return best
