# SPDX-License-Identifier: GPL-2.0-only
"""Which FEATURE_HISTORY rows a crosscheck confirms (``ptlab crosscheck --features``).

Each row of engine.arch.profiles.FEATURE_HISTORY says "from release R the
kernel does X" and sets a boolean field of the kernel profile. Against a
real kernel, the engine already runs each target under the profile of that
kernel's release. Here it runs each target again with one field flipped and
compares that run with the *same* kernel trace:

* the profile's value agrees and the flipped one diverges: the kernel
  confirms the row for that release (the feature is there, or is not yet);
* both agree: the targets cannot see the row (most TLB-only rows: the
  crosscheck sees calls and descriptors, not TLB instructions);
* the flipped value agrees and the profile's diverges: the row is
  contradicted -- the profile is wrong about this release.

Only boolean rows are flipped; the layout rows (descriptor formats) and
the TLB range limit have no "other value" to try.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from engine.arch.profiles import FEATURE_HISTORY


def flippable_rows() -> list[tuple[str, str, str]]:
    """(field, first profile, note) of every boolean row, once per field."""
    seen: set[str] = set()
    out = []
    for row in FEATURE_HISTORY:
        name, value, first = row[0], row[1], row[2]
        if isinstance(value, bool) and name not in seen:
            seen.add(name)
            out.append((name, first, row[-1]))
    return out


@dataclass
class FeatureEvidence:
    """What the targets run on one kernel say about one row."""

    field: str
    first: str  # the profile the row starts at
    value: bool = False  # the field's value in the profile the kernel was run with
    # (dataclasses.field: this class has a field named field)
    confirm: list[str] = dataclasses.field(default_factory=list)  # targets where only the flip diverges
    contradict: list[str] = dataclasses.field(default_factory=list)  # targets where only the flip agrees
    both_diverge: int = 0
    invisible: int = 0

    @property
    def verdict(self) -> str:
        if self.contradict and not self.confirm:
            return "contradicted"
        if self.contradict:
            return "mixed"
        if self.confirm:
            return "confirmed"
        return "not visible"

    def as_dict(self) -> dict[str, Any]:
        return {"field": self.field, "first": self.first, "value": self.value, "verdict": self.verdict,
                "confirming_targets": self.confirm, "contradicting_targets": self.contradict,
                "targets_where_both_diverge": self.both_diverge, "targets_not_seeing_it": self.invisible}


def gather(evidence: dict[str, FeatureEvidence], target: str, base_agrees: bool, kernel_profile: Any,
           rerun: Callable[[Any], bool | None]) -> None:
    """Flip each boolean row of ``kernel_profile`` and ask ``rerun(profile)``
    whether the engine then agrees with the kernel's trace (None: the
    engine refused the target under that profile, which counts as a
    divergence)."""
    for name, first, _note in flippable_rows():
        ev = evidence.setdefault(name, FeatureEvidence(name, first))
        value = bool(getattr(kernel_profile, name))
        ev.value = value
        flipped = rerun(replace(kernel_profile, **{name: not value}))
        if base_agrees and not flipped:
            ev.confirm.append(target)
        elif flipped and not base_agrees:
            ev.contradict.append(target)
        elif base_agrees:
            ev.invisible += 1
        else:
            ev.both_diverge += 1


def render(kernel: str, profile: str, evidence: dict[str, FeatureEvidence]) -> list[str]:
    """The text table ``--features`` prints for one kernel."""
    lines = [f"FEATURE_HISTORY rows on {kernel} (engine profile {profile}): flipping each boolean row "
             "and re-running the engine against the same trace"]
    w = max((len(n) for n in evidence), default=5)
    for ev in evidence.values():
        state = "on " if ev.value else "off"
        tell = ""
        if ev.confirm:
            tell = f"{len(ev.confirm)} target(s), e.g. {ev.confirm[0]}"
        if ev.contradict:
            tell += (", " if tell else "") + f"contradicted by {len(ev.contradict)}, e.g. {ev.contradict[0]}"
        lines.append(f"  {ev.field:<{w}}  from {ev.first:<11} {state}  {ev.verdict:<12} {tell}".rstrip())
    return lines
