# SPDX-License-Identifier: GPL-2.0-only
"""One-line text for events, ops and counters (op log, inspector, compare)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from engine.events import FIELDS

_BIG_INT = re.compile(r"(?<![\w.])(\+?)(\d{4,})(?![\w.])")


def op_text(op: Any) -> str:
    """An op as the user wrote it: a size or offset a scenario expression computed
    ("+{i * 2M}" gives 2097152) is shown as a size again (+2M)."""
    def size(m: re.Match[str]) -> str:
        v = int(m.group(2))
        if v % 1024:
            return m.group(0)
        for unit, shift in (("G", 30), ("M", 20), ("K", 10)):
            if v % (1 << shift) == 0:
                return f"{m.group(1)}{v >> shift}{unit}"
        return m.group(0)

    return _BIG_INT.sub(size, str(op))

_HEX_FIELDS = {"addr", "old", "new", "value", "start", "end", "operand"}


def _v(name: str, v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, int) and v >= 1 << 48:  # above any user VA: a descriptor's attribute bits
        return f"{v:#018x}"  # (the one style of descriptors: 0x and 16 digits)
    if isinstance(v, int) and (name in _HEX_FIELDS or v > 0xFFFF):
        return f"{v:#x}"
    if isinstance(v, tuple):
        return "(" + ", ".join(_v("addr" if isinstance(x, int) and x > 0xFFFF else "", x) for x in v) + ")"
    return str(v)


def hexd(v: int) -> str:
    """A descriptor value, in the one style the UI uses for them: 0x and 16 digits (0 is 0)."""
    return f"{v:#018x}" if v else "0"


def format_event(ev: tuple) -> str:
    kind = ev[0]
    if kind == "call":
        args = ev[2] if len(ev) > 2 else ()
        if isinstance(args, tuple):
            shown = ", ".join(_v("addr", a) if isinstance(a, int) and not isinstance(a, bool) and a > 9
                              else str(a) for a in args if not isinstance(a, dict))
        else:
            shown = str(args)
        return f"→ {ev[1]}({shown})"
    if kind == "ret":
        val = ev[2] if len(ev) > 2 else None
        return f"← {ev[1]}" + ("" if val is None else f" = {_v('value', val)}")
    if kind == "pte_write":
        _, addr, old, new, atomic, mm = ev[:6]
        how = "" if atomic == "store" else f" {atomic}"
        return f"pte_write{how} {addr:#x} {hexd(old)}→{hexd(new)}"
    if kind == "hw_update":
        _, addr, old, new, mm = ev[:5]
        return f"hw_update {addr:#x} {hexd(old)}→{hexd(new)} (walker)"
    if kind == "pte_read":
        return f"pte_read {ev[1]:#x} = {hexd(ev[2])}"
    if kind == "flush_tlb_range":
        f = dict(zip(FIELDS[kind], ev[1:], strict=False))
        extra = " whole mm" if f.get("whole_mm") else ""
        return (f"flush_tlb_range [{f['start']:#x}, {f['end']:#x}) stride {_v('stride', f['stride'])} "
                f"lvl {f['tlb_level']}{' last' if f['last_level'] else ''}"
                f"{'' if f['sync'] else ' nosync'}{'' if f['broadcast'] else ' local'}{extra}")
    if kind == "tlbi":
        f = dict(zip(FIELDS[kind], ev[1:], strict=False))
        return f"tlbi {f['op']} {f['addr']:#x} pages {f['pages']} asid {f['asid']}"
    if kind == "dsb":
        return f"dsb {ev[1]}"
    names = FIELDS.get(kind, ())
    parts = [f"{n}={_v(n, v)}" for n, v in zip(names, ev[1:], strict=False)]
    return f"{kind} " + " ".join(parts)


def call_depths(events: list[tuple]) -> list[int]:
    """Nesting depth of each event (call/ret brackets)."""
    out = []
    d = 0
    for ev in events:
        if ev[0] == "ret":
            d = max(0, d - 1)
            out.append(d)
        elif ev[0] == "call":
            out.append(d)
            d += 1
        else:
            out.append(d)
    return out


# (counter, short label, width) shown per op in the op log: pte reads, pte writes,
# contpte_convert calls, TLBI instructions, then cycles
OP_COLUMNS = (("pte_reads", "r", 3), ("pte_writes", "w", 3), ("converts", "cv", 1), ("tlbi", "t", 2))
OP_COSTS_WIDTH = sum(len(lab) + w + 1 for _, lab, w in OP_COLUMNS) + 7


def op_costs(counters: Mapping[str, Any] | None, cycles: float | None) -> str:
    if counters is None:
        return "(not run)".rjust(OP_COSTS_WIDTH)
    parts = []
    for c, lab, w in OP_COLUMNS:
        v = str(int(counters.get(c, 0)))
        parts.append(f"{lab}{v:<{w}}")
    cyc = "" if cycles is None else fmt_cycles(cycles) + "c"
    return (" ".join(parts) + " " + cyc.rjust(6)).rjust(OP_COSTS_WIDTH)


def fmt_cycles(c: float) -> str:
    if c >= 1e9:
        return f"{c / 1e9:.2f}G"
    if c >= 1e6:
        return f"{c / 1e6:.2f}M"
    if c >= 1e4:
        return f"{c / 1e3:.1f}k"
    return f"{c:.0f}"
