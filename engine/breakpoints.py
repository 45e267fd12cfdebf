# SPDX-License-Identifier: GPL-2.0-only
"""Breakpoint and watchpoint conditions for the stepping session.

A condition is evaluated at *points*: the start of an op (``ev is None``) and
each event of an op. Leaves:

==================  ==========================================================
``op:VERB``         the op is a ``VERB`` (fork, mprotect, ...)
``call:NAME``       an arch / core-mm function is called (contpte_convert ...)
``event:KIND``      an event of that kind: fold, unfold, convert, tlb_conflict,
                    invariant_violation, flush_tlb_mm (a whole-ASID flush),
                    page_fault, tlbi, ...
``addr:A-B``        an event touches a VA in [A, B) (descriptor accesses,
                    flushes, faults, TLB fills)
``block:A``         a descriptor of the contiguous block containing A changes
                    value, or the block is folded, unfolded or converted (TLB
                    hits and plain reads of it do not stop)
``watch:A[-B]``     a descriptor in [A, B) (default: one page) changes value
``watch-block:A``   a descriptor of A's block changes value
``proc:NAME``       the event concerns process NAME's page tables
``cost:>N``         the op costs more than N cycles
==================  ==========================================================

``&`` joins leaves that must hold at the same point (``event:unfold&block:
0x7f0000010000``); ``|`` joins alternatives. A condition with any event-level
leaf is tested on events; one made only of op-level leaves (op, cost) is
tested at op starts.

Op-level facts (per-op counters) let the session skip ops that cannot match
without re-running them (``may_match``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.events import FIELDS
from engine.writes import WRITE_KINDS, may_write

_ADDR_KINDS = {  # event kind -> (field index of start, field index of end or None)
    "pte_read": (1, None), "pte_write": (1, None), "pmd_write": (1, None), "hw_update": (1, None),
    "flush_tlb_range": (1, 2), "tlbi": (3, None), "convert": (1, None), "fold": (1, None),
    "unfold": (1, None), "tlb_hit": (1, None), "tlb_miss": (1, None), "tlb_fill": (1, None),
    "tlb_evict": (1, None), "tlb_conflict": (1, None), "page_fault": (1, None),
    "invariant_violation": (2, None), "mm": (2, None),
}
_WRITE_KINDS = frozenset(WRITE_KINDS)  # (engine.writes: old and new follow addr in each)
_MM_FIELD = {"pte_read": 1 + FIELDS["pte_read"].index("mm"), **{k: i[3] for k, i in WRITE_KINDS.items()}}

# kind -> counter that must be non-zero for an op to contain such an event
_KIND_COUNTER = {"fold": "folds", "unfold": "unfolds", "convert": "converts",
                 "tlb_conflict": "tlb_conflicts", "invariant_violation": "invariant_violations",
                 "page_fault": "page_faults", "flush_tlb_range": "flush_tlb_range", "tlbi": "tlbi",
                 "dsb": "dsb", "pte_write": "pte_writes", "pte_read": "pte_reads",
                 "tlb_hit": "tlb_hits", "tlb_miss": "tlb_misses"}


class BreakpointError(ValueError):
    pass


@dataclass(frozen=True)
class OpContext:
    index: int
    verb: str
    cycles: float | None  # None when not known yet
    counters: Mapping[str, int] | None


class Condition:
    event_level = True

    def match(self, ctx: OpContext, ev: tuple[Any, ...] | None) -> bool:
        return False

    def may_match(self, ctx: OpContext) -> bool:
        """False only when the op certainly has no matching point."""
        return True

    def stop_after(self, ev: tuple[Any, ...]) -> bool:
        """Stop after the matching event (state changed) rather than before it."""
        kind: str = ev[0]
        return kind != "call"


@dataclass(frozen=True)
class OpVerb(Condition):
    verb: str
    event_level = False

    def match(self, ctx: OpContext, ev: tuple[Any, ...] | None) -> bool:
        return ctx.verb == self.verb

    def may_match(self, ctx: OpContext) -> bool:
        return ctx.verb == self.verb

    def __str__(self) -> str:
        return f"op:{self.verb}"


@dataclass(frozen=True)
class Cost(Condition):
    threshold: float
    event_level = False

    def match(self, ctx: OpContext, ev: tuple[Any, ...] | None) -> bool:
        return ctx.cycles is not None and ctx.cycles > self.threshold

    def may_match(self, ctx: OpContext) -> bool:
        return ctx.cycles is None or ctx.cycles > self.threshold

    def __str__(self) -> str:
        return f"cost:>{self.threshold:g}"


@dataclass(frozen=True)
class Call(Condition):
    name: str

    def match(self, ctx: OpContext, ev: tuple[Any, ...] | None) -> bool:
        return ev is not None and ev[0] == "call" and ev[1] == self.name

    def may_match(self, ctx: OpContext) -> bool:
        return ctx.counters is None or ctx.counters.get("call:" + self.name, 0) > 0

    def __str__(self) -> str:
        return f"call:{self.name}"


@dataclass(frozen=True)
class Kind(Condition):
    kind: str

    def match(self, ctx: OpContext, ev: tuple[Any, ...] | None) -> bool:
        return ev is not None and ev[0] == self.kind

    def may_match(self, ctx: OpContext) -> bool:
        c = _KIND_COUNTER.get(self.kind)
        if ctx.counters is None:
            return True
        if c is None:
            return ctx.counters.get(self.kind, 0) > 0
        return ctx.counters.get(c, 0) > 0

    def __str__(self) -> str:
        return f"event:{self.kind}"


def _event_span(ev: tuple[Any, ...]) -> tuple[int, int] | None:
    spec = _ADDR_KINDS.get(ev[0])
    if spec is None:
        return None
    a = ev[spec[0]]
    if not isinstance(a, int):
        return None
    if spec[1] is not None:
        return a, ev[spec[1]]
    if ev[0] == "tlbi":
        return a, a + max(1, ev[4]) * 4096  # pages are granule pages; 4K is the finest bound
    return a, a + 1


@dataclass(frozen=True)
class AddrRange(Condition):
    start: int
    end: int
    label: str = "addr"

    def match(self, ctx: OpContext, ev: tuple[Any, ...] | None) -> bool:
        if ev is None:
            return False
        span = _event_span(ev)
        return span is not None and span[0] < self.end and self.start < span[1]

    def __str__(self) -> str:
        return f"{self.label}:{self.start:#x}-{self.end:#x}"


@dataclass(frozen=True)
class Watch(Condition):
    start: int
    end: int
    label: str = "watch"

    def match(self, ctx: OpContext, ev: tuple[Any, ...] | None) -> bool:
        return (ev is not None and ev[0] in _WRITE_KINDS and self.start <= ev[1] < self.end
                and ev[2] != ev[3])

    def may_match(self, ctx: OpContext) -> bool:
        # (the counter of pmd_write events is pmd_writes: asking for "pmd_write" skipped
        # every op that wrote only a PMD, e.g. mprotect of a whole THP)
        return ctx.counters is None or may_write(ctx.counters)

    def __str__(self) -> str:
        return f"{self.label}:{self.start:#x}-{self.end:#x}"


_BLOCK_KINDS = {"convert", "fold", "unfold"}


@dataclass(frozen=True)
class BlockChange(Condition):
    """``block:A``: the block's descriptors change (or it is converted/folded/unfolded)."""

    start: int
    end: int
    label: str = "block"

    def match(self, ctx: OpContext, ev: tuple[Any, ...] | None) -> bool:
        if ev is None:
            return False
        k = ev[0]
        addr: int = ev[1]
        if k in _WRITE_KINDS:
            return self.start <= addr < self.end and ev[2] != ev[3]
        return k in _BLOCK_KINDS and self.start <= addr < self.end

    def may_match(self, ctx: OpContext) -> bool:
        c = ctx.counters
        return c is None or may_write(c) or c.get("converts", 0) > 0

    def __str__(self) -> str:
        return f"{self.label}:{self.start:#x}-{self.end:#x}"


@dataclass(frozen=True)
class Proc(Condition):
    name: str

    def match(self, ctx: OpContext, ev: tuple[Any, ...] | None) -> bool:
        if ev is None:
            return False
        i = _MM_FIELD.get(ev[0])
        if i is not None:
            return len(ev) > i and ev[i] == self.name
        if ev[0] == "call":
            args = ev[2]
            return bool(args) and args[0] == self.name
        return False

    def __str__(self) -> str:
        return f"proc:{self.name}"


@dataclass(frozen=True)
class All(Condition):
    parts: tuple[Condition, ...]

    @property
    def event_level(self) -> bool:  # type: ignore[override]  # (a class attribute elsewhere)
        return any(p.event_level for p in self.parts)

    def match(self, ctx: OpContext, ev: tuple[Any, ...] | None) -> bool:
        return all(p.match(ctx, ev) for p in self.parts)

    def may_match(self, ctx: OpContext) -> bool:
        return all(p.may_match(ctx) for p in self.parts)

    def stop_after(self, ev: tuple[Any, ...]) -> bool:
        return all(p.stop_after(ev) for p in self.parts if p.event_level)

    def __str__(self) -> str:
        return "&".join(str(p) for p in self.parts)


@dataclass(frozen=True)
class AnyOf(Condition):
    parts: tuple[Condition, ...]

    @property
    def event_level(self) -> bool:  # type: ignore[override]  # (a class attribute elsewhere)
        return any(p.event_level for p in self.parts)

    def match(self, ctx: OpContext, ev: tuple[Any, ...] | None) -> bool:
        return any(p.match(ctx, ev) if (p.event_level or ev is None) else False for p in self.parts)

    def may_match(self, ctx: OpContext) -> bool:
        return any(p.may_match(ctx) for p in self.parts)

    def __str__(self) -> str:
        return "|".join(str(p) for p in self.parts)


def _int(text: str, what: str) -> int:
    try:
        return int(text.replace("_", ""), 0)
    except ValueError:
        raise BreakpointError(f"{what} {text!r} is not a number (use hex like 0x7f0000000000)") from None


def _event_kinds() -> tuple[str, ...]:
    return tuple(sorted(FIELDS))


def parse_leaf(text: str, page_size: int, block_size: int, verbs: tuple[str, ...] | None = None
               ) -> Condition:
    """``verbs``: the op verbs the session's machine knows (None: any verb is accepted)."""
    text = text.strip()
    if ":" not in text:
        raise BreakpointError(f"breakpoint {text!r}: expected KIND:VALUE (op:, call:, event:, addr:, "
                              "block:, watch:, watch-block:, proc:, cost:)")
    kind, _, val = text.partition(":")
    kind = kind.strip().lower()
    val = val.strip()
    if not val:
        raise BreakpointError(f"breakpoint {text!r}: missing value after {kind}:")
    if kind == "op":
        if verbs is not None and val not in verbs:
            raise BreakpointError(f"breakpoint {text!r}: no op is called {val!r} (ops: {', '.join(verbs)}; "
                                  "a kernel function is call:NAME)")
        return OpVerb(val)
    if kind == "call":
        return Call(val)
    if kind == "event":
        kinds = _event_kinds()
        if val not in kinds:
            raise BreakpointError(f"breakpoint {text!r}: no event kind {val!r} (kinds: {', '.join(kinds)})")
        return Kind(val)
    if kind == "proc":
        return Proc(val)
    if kind == "cost":
        v = val.lstrip(">").strip()
        try:
            return Cost(float(v))
        except ValueError:
            raise BreakpointError(f"cost threshold {val!r} is not a number") from None
    if kind in ("addr", "watch"):
        if "-" in val:
            a, b = (_int(x, "address") for x in val.split("-", 1))
        else:
            a = _int(val, "address")
            b = a + (page_size if kind == "watch" else 1)
        if b <= a:
            raise BreakpointError(f"empty address range {val!r}")
        return AddrRange(a, b) if kind == "addr" else Watch(a, b)
    if kind in ("block", "watch-block"):
        a = _int(val, "address") & ~(block_size - 1)
        return BlockChange(a, a + block_size) if kind == "block" else Watch(a, a + block_size, "watch-block")
    raise BreakpointError(f"unknown breakpoint kind {kind!r} (use op, call, event, addr, block, watch, "
                          "watch-block, proc, cost)")


def parse_condition(text: str, page_size: int = 4096, block_size: int = 65536,
                    verbs: tuple[str, ...] | None = None) -> Condition:
    alts = [a for a in text.split("|")]
    parsed = []
    for alt in alts:
        leaves = tuple(parse_leaf(x, page_size, block_size, verbs) for x in alt.split("&"))
        parsed.append(leaves[0] if len(leaves) == 1 else All(leaves))
    return parsed[0] if len(parsed) == 1 else AnyOf(tuple(parsed))


@dataclass
class Breakpoint:
    id: int
    condition: Condition
    text: str
    enabled: bool = True
    hits: int = 0

    def describe(self) -> str:
        return f"#{self.id} {self.text}" + ("" if self.enabled else " (disabled)")


def op_context(index: int, verb: str, record: Any | None) -> OpContext:
    if record is None:
        return OpContext(index, verb, None, None)
    return OpContext(index, verb, record.cycles, record.counters)
