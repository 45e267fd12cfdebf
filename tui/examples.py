# SPDX-License-Identifier: GPL-2.0-only
"""A built-in example: a short, hand-written trace of ptep calls.

It drives the arm64 ptep API directly (``engine.ptep_machine``), so it works
before the core-mm machine and its scenarios exist, and it shows every cell
state the grid knows: a block painted CONT by set_ptes(nr=16), a block that
folds on its last single-entry write, young/dirty updates by the hardware
walker, an unfold by wrprotect, a hole punched into a folded block, order-0
pages, special, PROT_NONE, swap and migration entries.
"""

from __future__ import annotations

from engine.granule import granule as to_granule
from engine.ops import Op
from engine.pte import LAYOUTS, PAGE_NONE, PAGE_READONLY, PAGE_SHARED, pte_mkold, pte_mkspecial

BASE_VA = 0x7F0000000000
BASE_PFN = 0x80000


def _ptep(call: str, *args: object) -> Op:
    d: dict[str, object] = {"call": call}
    for i, a in enumerate(args):
        d[f"a{i}"] = a
    text = f"{call}(" + ", ".join(hex(a) if isinstance(a, int) and not isinstance(a, bool) and a > 9
                                  else str(a) for a in args) + ")"
    return Op("ptep", d, 0, text)


def _folio(pfn: int, nr: int) -> Op:
    return Op("add_folio", {"pfn": pfn, "nr": nr}, 0, f"add_folio {pfn:#x} {nr}")


def _walk(addr: int, write: bool) -> Op:
    return Op("walk", {"addr": addr, "write": write}, 0, f"walk {addr:#x} {'write' if write else 'read'}")


def example_ops(granule: str | int = "4K", kernel_layout: str = "v6.18") -> list[Op]:
    """The example trace for a granule (addresses scale with the block size)."""
    g = to_granule(granule)
    n = g.cont_ptes
    ps = g.page_size
    blk = g.cont_pte_size
    layout = LAYOUTS[kernel_layout]

    def pte(pfn: int, prot: int) -> int:
        return ((pfn << g.page_shift) & g.pte_addr_low) | prot

    va = BASE_VA
    pfn = BASE_PFN
    ops: list[Op] = []
    # 1. a block painted CONT in one call
    ops.append(_folio(pfn, n))
    ops.append(_ptep("set_ptes", va, pte_mkold(pte(pfn, PAGE_SHARED)), n))
    # 2. a block written one entry at a time: folds on its last entry
    va2, pfn2 = va + blk, pfn + n
    ops.append(_folio(pfn2, n))
    for i in range(n):
        ops.append(_ptep("set_ptes", va2 + i * ps, pte_mkold(pte(pfn2 + i, PAGE_SHARED)), 1))
    # 3. the hardware walker: young, then dirty (DBM) on a CONT entry
    ops.append(_walk(va + 2 * ps, False))
    ops.append(_walk(va + 5 * ps, True))
    # 4. a larger folio: four blocks at once, then a hole punched into one
    va3, pfn3 = va + 4 * blk, pfn + 4 * n
    ops.append(_folio(pfn3, 4 * n))
    ops.append(_ptep("set_ptes", va3, pte(pfn3, PAGE_SHARED), 4 * n))
    ops.append(_ptep("ptep_get_and_clear", va3 + blk + 3 * ps))
    # 5. write-protect one entry of the second block: unfolds it
    ops.append(_ptep("ptep_set_wrprotect", va2 + 7 * ps))
    # 6. clear the access flag of a whole folded block
    ops.append(_ptep("ptep_test_and_clear_young", va3 + 2 * blk))
    # 7. order-0 pages, read-only, not physically contiguous
    va4 = va + 9 * blk
    for i in range(min(n, 8)):
        ops.append(_ptep("set_ptes", va4 + i * ps, pte(pfn + 0x1000 + 3 * i, PAGE_READONLY), 1))
    # 8. special entries (no folio)
    va5 = va + 10 * blk
    ops.append(_ptep("set_ptes", va5, pte_mkspecial(pte(pfn + 0x2000, PAGE_READONLY)), min(n, 4)))
    # 9. PROT_NONE, swap and migration entries
    va6 = va + 11 * blk
    none = layout.page_none if kernel_layout != "v6.18" else PAGE_NONE
    ops.append(_folio(pfn + 0x3000, 4))
    ops.append(_ptep("set_ptes", va6, pte(pfn + 0x3000, none), 4))
    for i in range(3):
        ops.append(_ptep("set_ptes", va6 + (4 + i) * ps, layout.swp_entry_to_pte(0, 0x100 + i), 1))
    ops.append(_ptep("set_ptes", va6 + 8 * ps, layout.swp_entry_to_pte(27, pfn + 0x10), 1))
    # 10. the first block again: clear it completely (unfold, then zap)
    ops.append(_ptep("get_and_clear_full_ptes", va, n, 0))
    for i, op in enumerate(ops, 1):
        object.__setattr__(op, "line", i)
    return ops
