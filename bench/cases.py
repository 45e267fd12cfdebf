# SPDX-License-Identifier: GPL-2.0-only
"""One benchmark result: a measured value beside its target."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from typing import Any

_last_progress = [0.0]


@dataclass
class Case:
    name: str
    value: float
    unit: str
    target: str
    ok: bool | None  # None: informational, no target
    note: str = ""  # by how much a target is missed and what limits it
    spread: tuple[float, float] | None = None  # lowest and highest of the runs value is the median of
    runs: int = 1

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "value": _round(self.value), "unit": self.unit,
                             "target": self.target, "ok": self.ok}
        if self.spread is not None:
            d["spread"] = [_round(self.spread[0]), _round(self.spread[1])]
            d["runs"] = self.runs
        if self.note:
            d["note"] = self.note
        return d

    def line(self, width: int = 58) -> str:
        mark = {True: "ok", False: "MISSED", None: ""}[self.ok]
        text = f"{self.name:<{width}} {_fmt(self.value):>12} {self.unit:<8} {self.target:<22} {mark}"
        if self.spread is not None:
            lo, hi = _fmt(self.spread[0]), _fmt(self.spread[1])
            text += f"\n{'':<{width}}   median of {self.runs}: {lo} .. {hi}"
        if self.note:
            text += f"\n{'':<{width}}   {self.note}"
        return text


def median(values: list[float]) -> float:
    """The median (the mean of the middle two for an even count)."""
    v = sorted(values)
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def print_cases(cases: list[Case], info: dict, as_json: bool) -> None:
    """What every benchmark script prints: ``{"cases": [...], "info": {...}}``, or one line a case."""
    if as_json:
        print(json.dumps({"cases": [c.as_dict() for c in cases], "info": info}))
        return
    for c in cases:
        print(c.line())
    print(info)


def _round(v: float) -> float | int:
    if isinstance(v, int) or v == int(v) and abs(v) >= 100:
        return int(v)
    return round(v, 3 if abs(v) < 10 else 1)


def _fmt(v: float) -> str:
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.3f}"


def progress_line(text: str, every: float = 0.5) -> None:
    """A transient progress line on stderr (at most every ``every`` seconds)."""
    now = time.monotonic()
    if now - _last_progress[0] < every:
        return
    _last_progress[0] = now
    if sys.stderr.isatty():
        sys.stderr.write(f"\r\033[K{text}")
    else:
        sys.stderr.write(text + "\n")
    sys.stderr.flush()


def progress_done() -> None:
    if sys.stderr.isatty():
        sys.stderr.write("\r\033[K")
        sys.stderr.flush()
