# SPDX-License-Identifier: GPL-2.0-only
"""Property test: random call sequences that respect the kernel's calling
contracts (set_ptes(nr > 1) only on none entries of one folio; batch APIs on
present runs of one folio in one table; ...) for every granule and kernel
profile. After every call the contpte invariants must hold, no convert may
lose access/dirty state, and every entry must still map the pfn the caller
put there."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import Simulator
from engine.arch import CYDP_CLEAR_DIRTY, CYDP_CLEAR_YOUNG, PROFILES
from engine.invariants import check_convert_events
from engine.pte import (
    PAGE_READONLY,
    PAGE_READONLY_EXEC,
    PAGE_SHARED,
    PTE_AF,
    PTE_CONT,
    PTE_DIRTY,
    PTE_RDONLY,
    PTE_WRITE,
)

BASE = 0x7F00_0000_0000


class Model:
    """What the caller believes: VA index -> pfn for every present entry."""

    def __init__(self, sim: Simulator, blocks: int):
        self.sim = sim
        self.n = sim.g.cont_ptes
        self.size = blocks * self.n
        self.ps = sim.g.page_size
        self.present: dict[int, int] = {}  # va index -> pfn
        self.folio_of_idx: dict[int, tuple[int, int]] = {}  # va index -> (folio head, nr)
        self.next_pfn = 1 << 20

    def va(self, i: int) -> int:
        return BASE + i * self.ps

    def new_folio(self, pages: int) -> int:
        head = (self.next_pfn + pages - 1) // pages * pages
        self.next_pfn = head + pages
        self.sim.add_folio(head, pages)
        return head

    def free_runs(self, length: int) -> list[int]:
        out = []
        i = 0
        while i + length <= self.size:
            if all((i + k) not in self.present and not self.sim.raw(self.va(i + k)) for k in range(length)):
                out.append(i)
            i += 1
        return out

    def present_runs(self) -> list[tuple[int, int]]:
        """Maximal runs of present entries mapping consecutive pfns of one folio."""
        return self.present_runs_where(lambda v: True)

    def present_runs_where(self, ok) -> list[tuple[int, int]]:
        """Like present_runs, restricted to entries whose raw value satisfies ok."""
        runs = []
        i = 0

        def good(k: int) -> bool:
            return k in self.present and ok(self.sim.raw(self.va(k)))

        while i < self.size:
            if not good(i):
                i += 1
                continue
            j = i + 1
            while (good(j) and self.present[j] == self.present[j - 1] + 1
                   and self.folio_of_idx[j] == self.folio_of_idx[i]):
                j += 1
            runs.append((i, j - i))
            i = j
        return runs


PROTS = [PAGE_READONLY, PAGE_SHARED, PAGE_READONLY_EXEC, "rw-dirty", "none"]


def prot_value(sim: Simulator, choice, young: bool) -> int:
    if choice == "rw-dirty":
        v = (PAGE_SHARED | PTE_DIRTY) & ~PTE_RDONLY
    elif choice == "none":
        v = sim.pte.PAGE_NONE
    else:
        v = choice
    return v if young else v & ~PTE_AF


def run_step(data, m: Model) -> None:
    sim = m.sim
    p = sim.profile
    ptep = sim.ptep
    runs = m.present_runs()
    actions = ["map"]
    if runs:
        actions += ["reprotect", "clear1", "cow", "batch_clear", "wrprotect", "access", "young", "walk",
                    "get"]
        if p.batched_mprotect:
            actions.append("mprotect_batch")
    action = data.draw(st.sampled_from(actions))
    if action == "map":
        order = data.draw(st.sampled_from([m.n.bit_length() - 1, m.n.bit_length(), 0, 1,
                                           m.n.bit_length() - 2]))
        pages = 1 << max(order, 0)
        if pages > m.size:
            pages = m.n
        # Mostly whole, naturally aligned folios (what anon faults map), so that
        # blocks get CONT and later unfold; sometimes a part, anywhere.
        if data.draw(st.integers(0, 3)):
            sub_len, sub_off = pages, 0
        else:
            sub_len = data.draw(st.integers(1, pages))
            sub_off = data.draw(st.integers(0, pages - sub_len))
        free = m.free_runs(sub_len)
        if not free:
            return
        aligned = [i for i in free if (i - sub_off) % pages == 0]
        start = data.draw(st.sampled_from(aligned if aligned and data.draw(st.integers(0, 3)) else free))
        head = m.new_folio(pages)
        pte = sim.pte.pfn_pte(head + sub_off, prot_value(sim, data.draw(st.sampled_from(PROTS)),
                                                          data.draw(st.booleans())))
        style = data.draw(st.sampled_from(["batch", "up", "down"])) if sub_len > 1 else "batch"
        if style == "batch":
            ptep.set_ptes(m.va(start), pte, sub_len)
        else:
            order_ = range(sub_len) if style == "up" else range(sub_len - 1, -1, -1)
            for k in order_:
                ptep.set_ptes(m.va(start + k), pte + k * m.ps, 1)
        for k in range(sub_len):
            m.present[start + k] = head + sub_off + k
            m.folio_of_idx[start + k] = (head, pages)
        return
    if action in ("wrprotect", "young"):
        # Core mm only write-protects writable entries (copy_present_ptes tests
        # pte_write) and harvests young bits of valid ones. Both helpers test
        # pte_cont() without pte_valid(), so on a CONT-painted PROT_NONE block
        # with a hole they would write into the hole: outside the contract.
        need = PTE_WRITE | 1 if action == "wrprotect" else 1
        runs = m.present_runs_where(lambda v: (v & need) == need)
        if not runs:
            return
    start, length = data.draw(st.sampled_from(runs))
    i = data.draw(st.integers(start, start + length - 1))
    sub = data.draw(st.integers(1, start + length - i))
    va = m.va(i)
    if action == "reprotect":  # set_ptes(nr == 1) over a present entry, same pfn
        newp = prot_value(sim, data.draw(st.sampled_from(PROTS)), data.draw(st.booleans()))
        ptep.set_ptes(va, sim.pte.pfn_pte(m.present[i], newp), 1)
    elif action == "clear1":
        fn = data.draw(st.sampled_from(["pte_clear", "ptep_get_and_clear", "ptep_clear_flush"]))
        getattr(ptep, fn)(va)
        del m.present[i]
    elif action == "cow":  # wp_page_copy: clear + flush, then a fresh order-0 page
        ptep.ptep_clear_flush(va)
        new = m.new_folio(1)
        ptep.set_ptes(va, sim.pte.pfn_pte(new, (PAGE_SHARED | PTE_DIRTY) & ~PTE_RDONLY), 1)
        m.present[i] = new
        m.folio_of_idx[i] = (new, 1)
    elif action == "batch_clear":
        full = data.draw(st.integers(0, 1))
        if data.draw(st.booleans()):
            ptep.clear_full_ptes(va, sub, full)
        else:
            ptep.get_and_clear_full_ptes(va, sub, full)
        for k in range(sub):
            del m.present[i + k]
    elif action == "wrprotect":
        if sub == 1 and data.draw(st.booleans()):
            ptep.ptep_set_wrprotect(va)
        else:
            ptep.wrprotect_ptes(va, sub)
    elif action == "access":
        cur = ptep.ptep_get(va) & ~PTE_CONT
        if not cur & 1:
            return  # PROT_NONE: the fault path never calls set_access_flags on it
        entry = cur | PTE_AF
        dirty = 0
        if cur & PTE_WRITE and data.draw(st.booleans()):
            entry = (entry | PTE_DIRTY) & ~PTE_RDONLY
            dirty = 1
        elif not cur & PTE_WRITE and data.draw(st.booleans()):  # exclusive reuse: gains write
            entry = (entry | PTE_DIRTY | PTE_WRITE) & ~PTE_RDONLY
            dirty = 1
        ptep.ptep_set_access_flags(va, entry, dirty)
    elif action == "young":
        choices = ["ptep_test_and_clear_young", "ptep_clear_flush_young"]
        if p.batched_young:
            choices += ["test_and_clear_young_ptes", "clear_flush_young_ptes"]
        if p.clear_young_dirty_ptes:
            choices.append("clear_young_dirty_ptes")
        fn = data.draw(st.sampled_from(choices))
        if fn.startswith("ptep_"):
            getattr(ptep, fn)(va)
        elif fn == "clear_young_dirty_ptes":
            ptep.clear_young_dirty_ptes(va, sub, data.draw(st.sampled_from(
                [CYDP_CLEAR_YOUNG, CYDP_CLEAR_DIRTY, CYDP_CLEAR_YOUNG | CYDP_CLEAR_DIRTY])))
        else:
            getattr(ptep, fn)(va, sub)
    elif action == "walk":
        sim.walk(va, write=data.draw(st.booleans()))
    elif action == "get":
        a = ptep.ptep_get(va)
        b = ptep.ptep_get_lockless(va)
        assert a == b
        if a & 1:
            assert sim.pte.pte_pfn(a) == m.present[i]
    elif action == "mprotect_batch":
        old = ptep.modify_prot_start_ptes(va, sub)
        newp = prot_value(sim, data.draw(st.sampled_from(PROTS)), bool(old & PTE_AF))
        ptep.modify_prot_commit_ptes(va, old, sim.pte.pfn_pte(m.present[i], newp), sub)


def check(m: Model) -> None:
    sim = m.sim
    assert sim.check_invariants() == []
    assert check_convert_events(sim.log.buf) == []
    for i in range(m.size):
        raw = sim.raw(m.va(i))
        if i in m.present:
            assert raw != 0, f"entry {i} vanished"
            assert sim.pte.pte_pfn(raw) == m.present[i], f"entry {i} maps the wrong pfn"
        else:
            assert raw == 0, f"entry {i} should be none, is {raw:#x}"
    if not sim.profile.contpte:
        assert not any(sim.raw(m.va(i)) & PTE_CONT for i in range(m.size))


@pytest.mark.parametrize("g", [4096, 16384, 65536])
@pytest.mark.parametrize("kernel", list(PROFILES))
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_contract_respecting_calls_keep_invariants(g, kernel, data):
    sim = Simulator(g, kernel)
    blocks = 3 if g == 16384 else 4
    m = Model(sim, blocks)
    for _ in range(data.draw(st.integers(4, 30))):
        run_step(data, m)
        check(m)
        sim.clear_events()
