# SPDX-License-Identifier: GPL-2.0-only
"""A translation lookaside buffer with the CPU profile's geometry.

Entries cache one translation each, of one of three sizes: a page, a
contiguous block (CONT_PTES pages, when the CPU coalesces CONT entries) or a
PMD block. They are tagged with the ASID (all user mappings are nG). The
structure is set associative (``entries / ways`` sets, LRU within a set),
indexed by the virtual frame number at the entry's own size.

Two translations of different sizes for one VA cached at once is a *TLB
conflict*: the break-before-make rule exists to prevent it. The TLB detects
it when the second entry is filled and reports ``tlb_conflict`` with
``abort`` = the CPU would raise a TLB conflict abort (not on the kernel's
BBML2_NOABORT allow-list). On an aborting CPU the older entries are dropped
(as the abort handler's invalidation would); a BBML2_NOABORT CPU keeps both
and uses either, which the architecture allows.

Every fill, eviction and invalidation is an event.
"""

from __future__ import annotations

from itertools import chain, islice
from typing import Any

from engine.events import EventLog
from engine.hw.cpus import CpuProfile

PAGE, CONT, PMD = 0, 1, 2
SIZE_NAMES = ("page", "cont", "pmd")
_OTHERS = ((CONT, PMD), (PAGE, PMD), (PAGE, CONT))  # per size class, the other two
_VFN_MASK = (1 << 52) - 1  # a key without its ASID

# clone_state(): per size class (key, descriptor, key, ...); each set's length; every
# set's (class, key) pairs, set after set
TlbState = tuple[tuple[tuple[int, ...], ...], tuple[int, ...], tuple[tuple[int, int], ...]]


def _pairs_dict(flat: tuple[int, ...]) -> dict[int, int]:
    it = iter(flat)
    return dict(zip(it, it, strict=True))


class TLB:
    def __init__(self, cpu: CpuProfile, page_shift: int, cont_log2: int, pmd_shift: int,
                 log: EventLog):
        geo = cpu.tlb
        self.ways = max(1, geo.ways)
        self.nsets = max(1, geo.entries // self.ways)
        self.coalesce = geo.cont_coalesce
        self.abort_on_conflict = not cpu.bbml2_noabort
        self.shifts = (page_shift, page_shift + cont_log2, pmd_shift)
        self.page_shift = page_shift
        self.log = log
        # per size class: key -> cached descriptor; key = asid << 52 | vfn
        self.entries: tuple[dict[int, int], dict[int, int], dict[int, int]] = ({}, {}, {})
        self.sets: list[list[tuple[int, int]]] = [[] for _ in range(self.nsets)]
        # Known to hold no conflicting entries: only a fill that keeps both
        # entries of a clash (a BBML2_NOABORT CPU) or a restored state can make
        # a conflict; conflicts() scans only when that may have happened.
        self._conflict_free = True

    # --- keys ---------------------------------------------------------------------------
    @staticmethod
    def key(asid: int, vfn: int) -> int:
        return (asid << 52) | vfn

    def _set_of(self, key: int) -> list[tuple[int, int]]:
        return self.sets[(key & ((1 << 52) - 1)) % self.nsets]

    # --- lookup -----------------------------------------------------------------------
    def lookup(self, asid: int, va: int) -> tuple[int, int] | None:
        """(size class, cached descriptor) of the entry translating va, or None."""
        base = asid << 52
        e0, e1, e2 = self.entries
        ps, cs, ms = self.shifts
        k = base | (va >> ps)
        d = e0.get(k)
        if d is not None:
            self._touch(PAGE, k)
            return PAGE, d
        if e1:
            k = base | (va >> cs)
            d = e1.get(k)
            if d is not None:
                self._touch(CONT, k)
                return CONT, d
        if e2:
            k = base | (va >> ms)
            d = e2.get(k)
            if d is not None:
                self._touch(PMD, k)
                return PMD, d
        return None

    def _touch(self, cls: int, key: int) -> None:
        s = self._set_of(key)
        item = (cls, key)
        if s[-1] != item:
            s.remove(item)
            s.append(item)

    # --- fill -------------------------------------------------------------------------
    def fill(self, asid: int, va: int, cls: int, desc: int) -> None:
        if cls == CONT and not self.coalesce:
            cls = PAGE
        shift = self.shifts[cls]
        key = (asid << 52) | (va >> shift)
        entries = self.entries
        # only entries of another size can clash: skip the scan when there are none
        # (the common case of order-0 memory: page entries only)
        o1, o2 = _OTHERS[cls]
        if entries[o1] or entries[o2]:
            self._check_conflict(asid, va, cls)
        ents = entries[cls]
        s = self.sets[(key & _VFN_MASK) % self.nsets]  # _set_of(key)
        if key in ents:
            s.remove((cls, key))
        elif len(s) >= self.ways:
            ocls, okey = s.pop(0)
            self._drop(ocls, okey, "evict")
        ents[key] = desc
        s.append((cls, key))
        self.log.tlb_fill((va >> shift) << shift, asid, 1 << shift, cls == CONT)

    def _check_conflict(self, asid: int, va: int, cls: int) -> None:
        """Another size class already translates part of the new entry's range."""
        base = asid << 52
        lo = (va >> self.shifts[cls]) << self.shifts[cls]
        hi = lo + (1 << self.shifts[cls])
        clash: list[tuple[int, int]] = []
        for other in (PAGE, CONT, PMD):
            if other == cls or not self.entries[other]:
                continue
            sh = self.shifts[other]
            ents = self.entries[other]
            if sh >= self.shifts[cls]:
                k = base | (va >> sh)
                if k in ents:
                    clash.append((other, k))
            else:
                first = base | (lo >> sh)
                count = (hi - lo) >> sh
                if count <= len(ents):
                    clash.extend((other, k) for k in range(first, first + count) if k in ents)
                else:
                    clash.extend((other, k) for k in ents if first <= k < first + count)
        if not clash:
            return
        self.log.tlb_conflict(va, asid, self.abort_on_conflict)
        if not self.abort_on_conflict:
            self._conflict_free = False
        else:
            for ocls, okey in clash:
                self._set_of(okey).remove((ocls, okey))
                self._drop(ocls, okey, "conflict")

    def _drop(self, cls: int, key: int, why: str) -> None:
        self.entries[cls].pop(key, None)
        shift = self.shifts[cls]
        self.log.tlb_evict((key & ((1 << 52) - 1)) << shift, key >> 52, 1 << shift)

    # --- invalidation (TLBI) ------------------------------------------------------------
    def invalidate(self, op: str, asid: int, addr: int, pages: int) -> None:
        """The arch layer's tlbi_listener: drop what one TLBI instruction covers."""
        if op.startswith("aside"):
            self.invalidate_asid(asid)
            return
        base = asid << 52
        if pages <= 1 and not addr & ((1 << self.page_shift) - 1):
            # one page (most TLBIs): at most one entry of each size covers it -- the
            # same entries, dropped in the same order, as the range walk below finds
            for cls in (PAGE, CONT, PMD):
                ents = self.entries[cls]
                if ents:
                    k = base | (addr >> self.shifts[cls])
                    if k in ents:
                        self._set_of(k).remove((cls, k))
                        self._drop(cls, k, "tlbi")
            return
        end = addr + (max(pages, 1) << self.page_shift)
        for cls in (PAGE, CONT, PMD):
            ents = self.entries[cls]
            if not ents:
                continue
            sh = self.shifts[cls]
            first = addr >> sh
            last = (end - 1) >> sh
            if last - first + 1 <= len(ents):
                keys = [base | v for v in range(first, last + 1) if (base | v) in ents]
            else:
                keys = [k for k in ents if k >> 52 == asid and first <= (k & ((1 << 52) - 1)) <= last]
            for k in keys:
                self._set_of(k).remove((cls, k))
                self._drop(cls, k, "tlbi")

    def invalidate_asid(self, asid: int) -> None:
        for cls in (PAGE, CONT, PMD):
            ents = self.entries[cls]
            for k in [k for k in ents if k >> 52 == asid]:
                self._set_of(k).remove((cls, k))
                self._drop(cls, k, "tlbi")

    # --- inspection -------------------------------------------------------------------
    def __len__(self) -> int:
        return sum(len(e) for e in self.entries)

    def items(self) -> list[tuple[int, int, int, str, int]]:
        """(asid, va, size, kind, cached descriptor) for every entry, sorted."""
        out = []
        for cls, ents in enumerate(self.entries):
            sh = self.shifts[cls]
            for k, d in ents.items():
                out.append((k >> 52, (k & ((1 << 52) - 1)) << sh, 1 << sh, SIZE_NAMES[cls], d))
        return sorted(out)

    def conflicts(self) -> list[tuple[int, int]]:
        """(asid, va) pairs translated by entries of two sizes right now."""
        if self._conflict_free:
            return []
        out = []
        for cls in (PAGE, CONT):
            sh = self.shifts[cls]
            for k in self.entries[cls]:
                asid = k >> 52
                va = (k & ((1 << 52) - 1)) << sh
                for other in range(cls + 1, 3):
                    if (asid << 52 | va >> self.shifts[other]) in self.entries[other]:
                        out.append((asid, va))
        if not out:
            self._conflict_free = True
        return sorted(set(out))

    # --- state ------------------------------------------------------------------------
    # A session keeps thousands of these (one per checkpoint), so the state is
    # flat tuples: each size class's entries as key, descriptor, key, ...; the
    # sets' (class, key) pairs in set order with each set's length. That is a
    # quarter of the memory of dict and list copies, and restoring rebuilds them.
    def clone_state(self) -> TlbState:
        return (tuple(tuple(chain.from_iterable(e.items())) for e in self.entries),
                tuple(map(len, self.sets)), tuple(chain.from_iterable(self.sets)))

    def restore_state(self, st: TlbState) -> None:
        flat_entries, lens, pairs = st
        self.entries = tuple(_pairs_dict(f) for f in flat_entries)  # type: ignore[assignment]
        it = iter(pairs)
        self.sets = [list(islice(it, n)) for n in lens]
        self._conflict_free = False

    @staticmethod
    def state_to_plain(st: TlbState) -> dict[str, Any]:
        """msgpack-able form of a clone_state() (the snapshot format: entries sorted per class)."""
        flat_entries, lens, pairs = st
        it = iter(pairs)
        return {"entries": [sorted([k, d] for k, d in _pairs_dict(f).items()) for f in flat_entries],
                "sets": [[[c, k] for c, k in islice(it, n)] for n in lens]}

    @staticmethod
    def state_from_plain(d: dict[str, Any]) -> TlbState:
        ents = [{int(k): int(v) for k, v in e} for e in d["entries"]]
        sets = [[(int(c), int(k)) for c, k in s] for s in d["sets"]]
        return (tuple(tuple(chain.from_iterable(e.items())) for e in ents),
                tuple(map(len, sets)), tuple(chain.from_iterable(sets)))

    def to_plain(self) -> dict[str, Any]:
        return {"entries": [[[k, d] for k, d in e.items()] for e in self.entries],
                "sets": [[[c, k] for c, k in s] for s in self.sets]}

    def from_plain(self, d: dict[str, Any]) -> None:
        self.entries = tuple({int(k): int(v) for k, v in e} for e in d["entries"])  # type: ignore
        self.sets = [[(int(c), int(k)) for c, k in s] for s in d["sets"]]
        self._conflict_free = False
        if len(self.sets) != self.nsets or len(self.entries) != 3:
            raise ValueError("TLB state does not match the CPU profile's geometry")
