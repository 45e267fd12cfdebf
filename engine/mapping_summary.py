# SPDX-License-Identifier: GPL-2.0-only
"""What a run leaves behind, per process: the final mapping summary that
``ptlab run`` prints (and puts under ``"processes"`` with --json)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.export import folded_block_starts
from engine.pte import PTE_SPECIAL

if TYPE_CHECKING:  # (the machine is built above this module: for annotations only)
    from engine.mm.process import Process
    from engine.mm.vma import VMA
    from engine.scenario_machine import Machine


def folded_blocks(pt: Any, cont_ptes: int, start: int = 0, end: int = 1 << 64) -> int:
    """How many folded blocks (engine.export.folded_block_starts, the one definition)
    have their first entry in [start, end)."""
    assert cont_ptes == pt.g.cont_ptes  # (the page table's granule says it; callers pass it too)
    return sum(1 for _ in folded_block_starts(pt, start, end))


def vma_summary(machine: Machine, proc: Process, vma: VMA) -> dict[str, Any]:
    g = machine.g
    lay = machine.layout
    pt = proc.mm.pt
    present = swap = special = 0
    for _va, pte in pt.iter_present(vma.start, vma.end):
        if lay.pte_present(pte):
            present += 1
            if pte & PTE_SPECIAL:
                special += 1
        else:
            swap += 1
    pmds = sum(1 for key, v in pt.pmd_leaves.items()
               if vma.start <= key << g.pmd_shift < vma.end and lay.pte_present(v))
    return {"name": vma.region, "start": vma.start, "end": vma.end, "prot": vma.prot,
            "kind": vma.kind(), "shared": vma.shared, "ptes_present": present,
            "cont_blocks": folded_blocks(pt, g.cont_ptes, vma.start, vma.end), "zero_page_ptes": special,
            "pmd_mappings": pmds, "swap_entries": swap}


def process_summary(machine: Machine, proc: Process) -> dict[str, Any]:
    vmas = [vma_summary(machine, proc, v) for v in proc.vmas]
    g = machine.g
    return {
        "pid": proc.pid, "asid": proc.mm.asid, "parent": proc.parent, "alive": proc.alive,
        "vmas": vmas,
        "rss_pages": sum(v["ptes_present"] - v["zero_page_ptes"] for v in vmas)
        + sum(v["pmd_mappings"] for v in vmas) * (1 << g.pmd_order),
        "cont_blocks": sum(v["cont_blocks"] for v in vmas),
        "pmd_mappings": sum(v["pmd_mappings"] for v in vmas),
        "swap_entries": sum(v["swap_entries"] for v in vmas),
    }


def machine_summary(machine: Machine) -> dict[str, dict[str, Any]]:
    return {p.name: process_summary(machine, p) for p in machine.process_list()}


def memory_summary(machine: Machine) -> dict[str, Any]:
    """Physical memory, swap and page cache at the end of a run (in pages)."""
    k = machine.kernel
    return {"physical": k.pm.stats(), "swap": k.swap.stats(),
            "page_cache": {f.name: f.cached_pages() for f in k.pc.files.values() if not f.shmem}}
