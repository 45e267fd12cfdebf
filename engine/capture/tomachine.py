# SPDX-License-Identifier: GPL-2.0-only
"""A captured state as a core-mm machine, so a scenario can run on top of it.

A saved capture (engine.capture.session) holds page tables and folio
boundaries built through the ptep API, plus the VMA layout in its header --
enough to look at, not enough for fork, mprotect or reclaim, which need
processes, VMAs, struct-page bookkeeping, a page cache and swap. This module
builds all of that in a fresh :class:`~engine.scenario_machine.Machine`:

* **one process**, ``p0`` (the machine's first process, so a scenario written
  for a fresh machine runs unchanged; the captured command and PID are in the
  session name);
* **one VMA per captured VMA**, named ``vma0``, ``vma1``, ... in address
  order: ``mprotect vma3 +0 64K r``. Anonymous VMAs get an anon_vma;
  file VMAs a file per path (its page cache holds the captured page-cache
  pages); shared anonymous and memfd/SysV VMAs a shmem file; special VMAs
  (``[vdso]``, ``[vvar]``, VM_PFNMAP) keep their place in the layout but
  their pages are not modelled;
* **physical memory relocated, structure kept**: captured PFNs lie anywhere
  in the host's RAM; every ``MAX_PAGE_ORDER`` block that holds a captured
  page is moved into the machine's memory in the same order (adjacent blocks
  stay adjacent, a gap stays a gap of one block), so every folio keeps its
  alignment, its size and its pages' contiguity -- all that contpte looks at;
* **pages**: in an anonymous VMA, or written (a writable entry) in a private
  file VMA, a page is anonymous (exclusive when its entry is writable, or its
  VMA is not); otherwise it is a page-cache page of its file at the index
  its address gives. Refcounts, mapcounts and the reverse map are set as the
  fault paths would have left them; swap entries get a slot of the machine's
  swap device each, in the order of their captured offsets; zero-page entries
  map the machine's zero page;
* **what cannot be modelled consistently is dropped, and counted**: a page
  mapped twice where the engine's reverse map allows one place, a large folio
  mapped at addresses that disagree with one index (it becomes order-0
  pages), entries outside every VMA, swap entries of shared mappings. A CONT
  block left violating the contpte rules after that is unfolded. The
  result must pass the core-mm audit and the invariant checks, or the start
  is refused.

The captured descriptors are kept bit for bit apart from their PFNs, so
every block folded at capture stays folded.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from engine.errors import ScenarioError
from engine.invariants import check_block
from engine.mm.audit import audit
from engine.mm.physmem import (
    F_ANON,
    F_DIRTY,
    F_LRU,
    F_PAGECACHE,
    F_SWAPBACKED,
    F_UPTODATE,
    P_ANON_EXCLUSIVE,
    max_page_order,
)
from engine.mm.process import Process
from engine.mm.rmap import anon_vma_prepare
from engine.mm.swap import SWP_TYPE
from engine.mm.vma import VM_EXEC, VM_READ, VM_SHARED, VM_WRITE, VMA
from engine.pte import PTE_CONT, PTE_DIRTY, PTE_RDONLY, PTE_SPECIAL, PTE_VALID, PTE_WRITE
from engine.ptep_machine import ApiState
from engine.scenario_machine import Machine
from engine.state.pagetable import PageTable
from engine.text import escape_controls

MAX_PATH = 4096
KINDS = ("anon", "shmem", "file", "special")


@dataclass
class Converted:
    """What :func:`populate` did: notes (what was dropped, by reason) and the names."""

    notes: Counter[str] = field(default_factory=Counter)
    names: list[tuple[str, int, int, str, str]] = field(default_factory=list)  # name, start, end, perms, path

    def warnings(self) -> list[str]:
        return [f"{n} {why}" for why, n in sorted(self.notes.items(), key=lambda kv: (-kv[1], kv[0]))]


def checked_vmas(prov: Any, page_size: int) -> list[dict[str, Any]]:
    """The header's VMA list, type- and range-checked (it comes from a file)."""
    if not isinstance(prov, dict):
        raise ScenarioError("the capture has no provenance (VMA layout) in its header")
    vmas = prov.get("vmas")
    count = prov.get("vma_count")
    if not isinstance(vmas, list) or type(count) is not int:
        raise ScenarioError("the capture's VMA layout is missing or malformed")
    if count != len(vmas):
        raise ScenarioError(f"the capture lists {len(vmas)} of its {count} VMAs; a scenario needs them all")
    out = []
    prev_end = 0
    for i, v in enumerate(vmas):
        if not isinstance(v, dict):
            raise ScenarioError(f"captured VMA {i} is not a map")
        start, end, perms = v.get("start"), v.get("end"), v.get("perms")
        kind, path, offset = v.get("kind"), v.get("path", ""), v.get("offset", 0)
        if (type(start) is not int or type(end) is not int or not prev_end <= start < end <= 1 << 48
                or start % page_size or end % page_size):
            raise ScenarioError(f"captured VMA {i} has a malformed or overlapping range")
        if (not isinstance(perms, str) or len(perms) != 4 or perms[0] not in "r-" or perms[1] not in "w-"
                or perms[2] not in "x-" or perms[3] not in "ps"):
            raise ScenarioError(f"captured VMA {i} has malformed permissions")
        if kind not in KINDS or not isinstance(path, str) or len(path) > MAX_PATH:
            raise ScenarioError(f"captured VMA {i} has a malformed kind or path")
        if type(offset) is not int or not 0 <= offset < 1 << 63:
            raise ScenarioError(f"captured VMA {i} has a malformed file offset")
        prev_end = end
        out.append({"start": start, "end": end, "perms": perms, "kind": kind, "path": path,
                    "offset": offset})
    return out


def _flags(perms: str) -> int:
    return ((VM_READ if perms[0] == "r" else 0) | (VM_WRITE if perms[1] == "w" else 0)
            | (VM_EXEC if perms[2] == "x" else 0) | (VM_SHARED if perms[3] == "s" else 0))


def populate(m: Machine, api_state: ApiState, prov: Any) -> Converted:
    """Fill the fresh machine ``m`` (engine.scenario_machine.Machine, nothing run on it)
    with the captured state ``api_state`` (an ApiMachine state: page tables and
    folio registry) and the header's provenance. Raises ScenarioError."""
    k = m.kernel.ctx  # the core-mm context: the capture fills its state directly
    g = m.g
    ps, shift = g.page_size, g.page_shift
    layout = k.layout
    pm = k.pm
    out = Converted()
    notes = out.notes
    vspecs = checked_vmas(prov, ps)
    proc = m.current
    if proc is None or len(k.procs) != 1 or proc.vmas:
        raise ScenarioError("a captured state can only be put into a fresh machine")

    # --- VMAs and files ------------------------------------------------------------------
    vmas: list[tuple[VMA, dict[str, Any]]] = []
    files: dict[str, Any] = {}  # path (or a per-VMA key) -> File
    anon_vma = 0
    for i, spec in enumerate(vspecs):
        name = f"vma{i}"
        flags = _flags(spec["perms"])
        npages = (spec["end"] - spec["start"]) >> shift
        kind = spec["kind"]
        shmem = kind == "shmem" and bool(flags & VM_SHARED)
        fid = 0
        pgoff = spec["start"] >> shift  # an anonymous VMA's linear index, as do_mmap sets it
        if kind == "file" or shmem:
            pgoff = spec["offset"] // ps
            key = spec["path"] or f"shmem:{proc.name}:{name}"
            f = files.get(key)
            if f is None:
                f = files[key] = k.pc.create(escape_controls(key)[:MAX_PATH], pgoff + npages, shmem=shmem)
            f.resize(pgoff + npages)
            fid = f.fid
        vma = VMA(name, spec["start"], spec["end"], flags, 0, pgoff, fid, shmem)
        vma.page_prot = k.vma_page_prot(vma)
        if fid == 0:
            # one anon_vma for every anonymous VMA (as if split from one another, which keeps
            # their anon_vma): a folio mapped across an mprotect split stays reachable
            if not anon_vma:
                anon_vma = k.next_id("anon_vma")
            vma.anon_vma = anon_vma
            vma.avc = (anon_vma,)
        proc.insert(vma)
        proc.regions[name] = [spec["start"], spec["end"] - spec["start"]]
        vmas.append((vma, spec))
        out.names.append((name, spec["start"], spec["end"], spec["perms"], spec["path"]))
    m._check_vma_room(proc, 0)
    m._check_mapped_room(0)
    k.vmas_changed()

    # --- the captured entries, classified ---------------------------------------------------
    pt_snap, reg = api_state
    src = PageTable(g)
    src.restore(pt_snap)
    fol = reg  # FolioRegistry of the capture (head pfn -> order)

    def folio_of(pfn: int) -> tuple[int, int]:
        return fol.folio_of(pfn)

    # (va, pte, vma, spec, anon?) for every present, normal entry; swap entries apart
    normal: list[tuple[int, int, VMA, bool]] = []
    zero: list[tuple[int, int]] = []
    swaps: list[tuple[int, int, VMA]] = []
    pmds: list[tuple[int, int, VMA, bool]] = []
    for va, pte in src.iter_present():
        v = proc.find_vma(va)
        if v is None:
            notes["entries outside every captured VMA dropped"] += 1
            continue
        kind = vmas[int(v.region[3:])][1]["kind"]
        if kind == "special":
            notes["entries of special mappings ([vdso], [vvar], VM_PFNMAP) not modelled"] += 1
            continue
        if not layout.pte_present(pte):
            if v.shared:
                notes["swap entries of shared mappings dropped"] += 1
            else:
                swaps.append((va, pte, v))
            continue
        if pte & PTE_SPECIAL:
            zero.append((va, pte))
            continue
        anon = v.file == 0 or (not v.shared and bool(pte & PTE_WRITE))
        normal.append((va, pte, v, anon))
    for key, pmd in sorted(src.pmd_leaves.items()):
        va = key << g.pmd_shift
        v = proc.find_vma(va)
        if v is None or v.end < va + g.pmd_size or v.start > va or not layout.pte_present(pmd) \
                or vmas[int(v.region[3:])][1]["kind"] == "special":
            notes["PMD entries outside a VMA or not present dropped"] += 1
            continue
        anon = v.file == 0 or (not v.shared and bool(pmd & PTE_WRITE))
        pmds.append((va, pmd, v, anon))

    # --- folios: keep a large folio only where one index explains all its mappings -----------
    def linear(v: VMA, va: int) -> int:
        return v.linear_index(va, shift)

    by_folio: dict[int, list[tuple[int, int, VMA, bool]]] = {}
    for ent in normal:
        by_folio.setdefault(folio_of(k.pte_pfn(ent[1]))[0], []).append(ent)
    # folio head -> (nr, anon, a VMA it is mapped in, index of the head)
    keep: dict[int, tuple[int, bool, VMA, int]] = {}
    placed: list[tuple[tuple[int, int, VMA, bool], int]] = []  # (entry, its folio's head), every mapping kept
    file_slots: dict[tuple[int, int], int] = {}  # (fid, index) -> pfn cached there

    def claim_file(v: VMA, index: int, pfn: int, nr: int) -> bool:
        keys = [(v.file, index + j) for j in range(nr)]
        if any(file_slots.get(kk, pfn + j) != pfn + j for j, kk in enumerate(keys)):
            return False
        for j, kk in enumerate(keys):
            file_slots[kk] = pfn + j
        return True

    def group(v: VMA, anon: bool) -> tuple[str, int]:
        # anon pages are reached through their VMA's anon_vma: one for all anonymous VMAs
        # (their linear index is the address), one per file VMA; page-cache pages through the file
        return ("anon", 0 if v.file == 0 else id(v)) if anon else ("file", v.file)

    for va, pmd, v, anon in pmds:
        head = k.pte_pfn(pmd)
        nr = 1 << g.pmd_order
        if folio_of(head) != (head, nr) or head in by_folio or head in keep:
            notes["PMD entries whose folio is not one PMD-sized folio dropped"] += 1
            continue
        index = linear(v, va)
        if not anon and not claim_file(v, index, head, nr):
            notes["PMD entries at a file index already cached dropped"] += 1
            continue
        keep[head] = (nr, anon, v, index)
    for head, ents in sorted(by_folio.items()):
        nr = folio_of(head)[1]
        if head in keep:
            notes["entries of a PMD-mapped folio also mapped by PTEs dropped"] += len(ents)
            continue
        first = ents[0]
        v0, anon0 = first[2], first[3]
        g0 = group(v0, anon0)
        pfns = [k.pte_pfn(e[1]) for e in ents]
        base_index = linear(v0, first[0]) - (pfns[0] - head)
        whole = (nr > 1 and all(group(e[2], e[3]) == g0 for e in ents)
                 and (not anon0 or len(set(pfns)) == len(pfns))
                 and all(linear(e[2], e[0]) - (p - head) == base_index
                         for e, p in zip(ents, pfns, strict=True))
                 and base_index >= 0
                 and (anon0 or claim_file(v0, base_index, head, nr)))
        if whole:
            keep[head] = (nr, anon0, v0, base_index)
            placed.extend((e, head) for e in ents)
            continue
        if nr > 1:
            notes["large folios mapped where no single index explains them, made order-0 pages"] += 1
        for e, p in zip(ents, pfns, strict=True):
            va, pte, v, anon = e
            idx = linear(v, va)
            if not anon and not claim_file(v, idx, p, 1):
                if v.shared:
                    notes["page-cache pages at a file index already cached dropped"] += 1
                    continue
                # another page is cached at that index: this one is a private copy (a CoWed page
                # made read-only since, like RELRO)
                anon = True
                e = (va, pte, v, True)
            if p in keep:
                kn, kanon, kv, kidx = keep[p]
                if anon or kanon or kv.file != v.file or kidx != idx:
                    notes["pages mapped more than once, extra mappings dropped"] += 1
                    continue
            else:
                keep[p] = (1, anon, v, idx)
            placed.append((e, p))

    # --- physical memory: move each used MAX_PAGE_ORDER block, in order ---------------------
    block_order = max_page_order(shift, g.pmd_order)
    used_blocks = sorted({h >> block_order for h in keep} | {(h + n - 1) >> block_order
                                                            for h, (n, *_r) in keep.items()})
    new_block: dict[int, int] = {}
    nb = 0  # block 0 of the machine holds its zero page
    prev = None
    for b in used_blocks:
        nb += 1 if prev is not None and b == prev + 1 else 2
        new_block[b] = nb
        prev = b
    need = (nb + 1) << block_order
    if need > pm.npages:
        raise ScenarioError(f"the captured memory needs {need << shift >> 20} MiB of the machine's "
                            f"{pm.npages << shift >> 20} MiB (a larger memory is set automatically; "
                            "this one is too large)")

    def reloc(pfn: int) -> int:
        return pm.base + (new_block[pfn >> block_order] << block_order) + (pfn & ((1 << block_order) - 1))

    reg_m = pm.registry
    buddy = pm.buddy
    for head, (nr, anon, v, index) in sorted(keep.items()):
        h = reloc(head)
        for j in range(nr):
            if not buddy.take(h + j):
                raise ScenarioError(f"physical page {h + j:#x} is not free for the captured folio at "
                                    f"{head:#x}")
        if nr > 1:
            reg_m.insert(h, nr.bit_length() - 1)
        i = h - pm.base
        if anon:
            anon_vma_prepare(k, v)
            pm.flags[i] |= F_ANON | F_SWAPBACKED | F_UPTODATE | F_LRU
            pm.mapping[i] = v.anon_vma
        else:
            f = k.pc.files[v.file]
            for j in range(nr):
                f.cache[index + j] = h + 1
            pm.flags[i] |= F_PAGECACHE | F_UPTODATE | F_LRU
            pm.mapping[i] = v.file
            pm.ref[i] += nr  # the page cache's references
        pm.index[i] = index

    # --- page tables ------------------------------------------------------------------------
    pt = proc.mm.pt
    addr_low = g.pte_addr_low

    def repoint(pte: int, pfn: int) -> int:
        return (pte & ~addr_low) | ((pfn << shift) & addr_low)

    for va, pmd, v, anon in pmds:
        head = k.pte_pfn(pmd)
        if head not in keep or keep[head][2] is not v:
            continue
        h = reloc(head)
        i = h - pm.base
        pt.set_pmd(va, repoint(pmd, h))
        pm.entire[h] = pm.entire.get(h, 0) + 1
        pm.lmap[i] += 1
        pm.ref[i] += 1
        if anon and (pmd & PTE_WRITE or not v.flags & VM_WRITE):
            for j in range(1 << g.pmd_order):
                pm.flags[i + j] |= P_ANON_EXCLUSIVE
        if pmd & PTE_DIRTY or (pmd & PTE_WRITE and not pmd & PTE_RDONLY):
            pm.flags[i] |= F_DIRTY
    for (va, pte, v, anon), head in sorted(placed, key=lambda pe: (pe[0][0], pe[0][2].start)):
        h = reloc(head)
        p = reloc(k.pte_pfn(pte))
        i = h - pm.base
        pt.set(va, repoint(pte, p))
        pm.mapcount[p - pm.base] += 1
        pm.lmap[i] += 1
        pm.ref[i] += 1
        if anon and (pte & PTE_WRITE or not v.flags & VM_WRITE):
            pm.flags[p - pm.base] |= P_ANON_EXCLUSIVE
        if pte & PTE_DIRTY or (pte & PTE_WRITE and not pte & PTE_RDONLY):
            pm.flags[i] |= F_DIRTY
    for va, pte in zero:
        pt.set(va, repoint(pte, pm.zero_pfn))
    sw = k.swap
    for va, pte, _v in sorted(swaps, key=lambda s: (layout.swp_offset(s[1]), s[0])):
        slot = sw.alloc(0)
        if slot < 0:
            notes["swap entries beyond the machine's swap dropped"] += 1
            continue
        sw.dup(slot)
        pt.set(va, layout.swp_entry_to_pte(SWP_TYPE, slot, exclusive=layout.swp_exclusive(pte)))

    # --- CONT blocks the conversion broke are unfolded ----------------------------------------
    _unfold_broken_blocks(m, proc, notes)
    k.vmas_changed()
    problems = audit(k) + [str(v) for v in m.check_invariants()]
    if problems:
        raise ScenarioError(f"the captured state cannot be modelled consistently ({len(problems)} problems, "
                            f"the first: {problems[0]})")
    return out


def _unfold_broken_blocks(m: Machine, proc: Process, notes: Counter[str]) -> None:
    n = m.g.cont_ptes
    vc = PTE_VALID | PTE_CONT
    pt = proc.mm.pt
    for key in sorted(pt.tables):
        base = key << m.g.pmd_shift
        t = pt.tables[key]
        for i0 in range(0, len(t), n):
            if not any(e & vc == vc for e in t[i0:i0 + n]):
                continue
            if check_block(m.arch, proc.mm, t, i0, base + (i0 << m.g.page_shift)):
                for j in range(n):
                    va = base + ((i0 + j) << m.g.page_shift)
                    e = pt.get(va)
                    if e & PTE_CONT:
                        pt.set(va, e & ~PTE_CONT)
                notes["CONT blocks no longer valid after the conversion unfolded"] += 1
