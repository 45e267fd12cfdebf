# SPDX-License-Identifier: GPL-2.0-only
"""Which descriptors did these events write? -- the one answer (issue #15 item 5).

Three event kinds write a descriptor: ``pte_write`` (software, any atomic kind),
``hw_update`` (the walker setting AF or clearing RDONLY under DBM) and
``pmd_write`` (a PMD entry: a THP mapping, or a PTE table put in or taken out).
The session's mid-op overlay, the cells the last step changed, "since when does
this block look like this", the exact mid-op machine and the block breakpoint
all read the events through this module, so none of them can forget a kind or
take the process name from the wrong field.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, NamedTuple

from engine.events import FIELDS

# kind -> index in the event tuple (kind first) of the fields every write has
_WRITE_FIELDS = ("addr", "old", "new", "mm")
WRITE_KINDS: dict[str, tuple[int, ...]] = {
    k: tuple(1 + FIELDS[k].index(f) for f in _WRITE_FIELDS) for k in ("pte_write", "hw_update", "pmd_write")}
# the counters an op's record has for those events (count mode keeps no events, only these)
WRITE_COUNTERS = ("pte_writes", "hw_update", "pmd_writes")


class Write(NamedTuple):
    proc: str  # the mm's (process') name
    addr: int  # VA the descriptor maps (a PMD entry: the start of its PMD range)
    old: int
    new: int
    pmd: bool  # a PMD entry, not a PTE


def descriptor_writes(events: Iterable[tuple[Any, ...]]) -> Iterator[Write]:
    """Every descriptor write in events, in order (writes of an unchanged value included)."""
    kinds = WRITE_KINDS
    for ev in events:
        idx = kinds.get(ev[0])
        if idx is not None:
            a, o, n, m = idx
            yield Write(ev[m], ev[a], ev[o], ev[n], ev[0] == "pmd_write")


def written(events: Iterable[tuple[Any, ...]]) -> set[tuple[str, int]]:
    """(process, VA) of every descriptor the events wrote."""
    # (descriptor_writes without a Write per event: an op may write millions)
    kinds = WRITE_KINDS
    out: set[tuple[str, int]] = set()
    for ev in events:
        idx = kinds.get(ev[0])
        if idx is not None:
            out.add((ev[idx[3]], ev[idx[0]]))
    return out


def written_values(events: Iterable[tuple[Any, ...]]) -> dict[tuple[str, int], int]:
    """(process, VA) -> the last value the events wrote there (the mid-op overlay)."""
    kinds = WRITE_KINDS
    out: dict[tuple[str, int], int] = {}
    for ev in events:
        idx = kinds.get(ev[0])
        if idx is not None:
            out[(ev[idx[3]], ev[idx[0]])] = ev[idx[2]]
    return out


def may_write(counters: Mapping[str, int]) -> bool:
    """Could an op with these counters have written a descriptor? (False: skip its events)"""
    return any(counters.get(c, 0) for c in WRITE_COUNTERS)


def changes_block(events: Iterable[tuple[Any, ...]], proc: str, start: int, end: int, pmd_size: int) -> bool:
    """Did the events change a descriptor of the block [start, end) in proc -- one of its
    PTEs, or the PMD entry above it (a PMD mapping, a table put in or taken out)?
    A write of the value already there changes nothing."""
    for w in descriptor_writes(events):
        if w.proc != proc or w.old == w.new:
            continue
        if w.pmd:
            if w.addr <= start < w.addr + pmd_size:
                return True
        elif start <= w.addr < end:
            return True
    return False
