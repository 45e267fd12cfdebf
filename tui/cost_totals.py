# SPDX-License-Identifier: GPL-2.0-only
"""Cumulative costs at any op boundary, without summing every record each step.

``Session.totals()`` adds up every record; the UI asks for totals after each
step, so this keeps prefix sums every :data:`STRIDE` ops (records are
append-only, so a prefix never changes) and adds at most STRIDE records.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.session import Session

STRIDE = 256
SPARK = "▁▂▃▄▅▆▇█"


class CostModel:
    def __init__(self, session: Session):
        self.session = session
        self._prefix: list[Counter] = [Counter()]  # _prefix[i] = totals of records[: i * STRIDE]

    def totals(self, upto: int) -> Counter:
        recs = self.session.records
        upto = max(0, min(upto, len(recs)))
        while len(self._prefix) <= upto // STRIDE:
            i = len(self._prefix)
            c = Counter(self._prefix[-1])
            for r in recs[(i - 1) * STRIDE: i * STRIDE]:
                c.update(r.counters)
                c["cycles"] += r.cycles  # type: ignore[assignment]  # a float beside the counts
            self._prefix.append(c)
        base = upto // STRIDE
        c = Counter(self._prefix[base])
        for r in recs[base * STRIDE: upto]:
            c.update(r.counters)
            c["cycles"] += r.cycles  # type: ignore[assignment]  # a float beside the counts
        return c

    def cycles_window(self, end: int, width: int) -> tuple[int, list[float | None]]:
        """Cycles of ops [end - width, end) (None: not run yet); returns (first, values)."""
        recs = self.session.records
        n = self.session.n_ops
        end = max(min(end, n), min(width, n))
        first = max(0, end - width)
        return first, [recs[k].cycles if k < len(recs) else None for k in range(first, end)]


def sparkline(values: list[float | None], current: int | None = None) -> list[tuple[str, bool]]:
    """(char, is_current) per value, scaled to the window's maximum."""
    known = [v for v in values if v is not None]
    top = max(known) if known else 0.0
    out = []
    for i, v in enumerate(values):
        if v is None:
            ch = " "
        elif top <= 0:
            ch = SPARK[0]
        else:
            ch = SPARK[min(len(SPARK) - 1, int(v / top * (len(SPARK) - 1) + 0.5))]
        out.append((ch, i == current))
    return out


def hit_rate(c: Counter) -> str:
    h, m = c.get("tlb_hits", 0), c.get("tlb_misses", 0)
    if h + m == 0:
        return "n/a (no TLB accesses)"
    return f"{100.0 * h / (h + m):.1f}% ({h}/{h + m})"
