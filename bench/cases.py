# SPDX-License-Identifier: GPL-2.0-only
"""One benchmark result: a measured value beside its target."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass

_last_progress = [0.0]


@dataclass
class Case:
    name: str
    value: float
    unit: str
    target: str
    ok: bool | None  # None: informational, no target
    note: str = ""  # by how much a target is missed and what limits it

    def as_dict(self) -> dict:
        d = {"name": self.name, "value": _round(self.value), "unit": self.unit, "target": self.target,
             "ok": self.ok}
        if self.note:
            d["note"] = self.note
        return d

    def line(self, width: int = 58) -> str:
        mark = {True: "ok", False: "MISSED", None: ""}[self.ok]
        text = f"{self.name:<{width}} {_fmt(self.value):>12} {self.unit:<8} {self.target:<22} {mark}"
        if self.note:
            text += f"\n{'':<{width}}   {self.note}"
        return text


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
