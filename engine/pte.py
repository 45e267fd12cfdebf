# SPDX-License-Identifier: GPL-2.0-only
"""Bit-accurate arm64 stage-1 last-level descriptors for user mappings.

A PTE is a plain ``int`` holding the raw 64-bit value. Bit positions come from
arch/arm64/include/asm/pgtable-hwdef.h and pgtable-prot.h; predicates and
value helpers are named after (and behave like) the static inlines in
arch/arm64/include/asm/pgtable.h.

Three descriptor layouts exist across the kernel profiles:

* ``v6.9``  -- PTE_PROT_NONE is bit 58, swap type in bits 7:3, offset 57:8,
  ``pte_mkwrite`` always clears PTE_RDONLY;
* ``v6.10`` -- "arm64/mm: Remove PTE_PROT_NONE bit" (f0f5863a0fb0) and
  "Move PTE_PRESENT_INVALID to overlay PTE_NG" (55564814a838): a present but
  invalid entry has VALID=0, NG=1; bit 58 becomes PTE_UFFD_WP (5b32510af77b);
  swap type in bits 10:6, offset 61:12, bit 3 = PTE_SWP_UFFD_WP;
* ``v6.17`` -- as v6.10, plus POE: pte_modify() also replaces the PTE_PO_IDX
  key bits ("arm64: mask out POIndex when modifying a PTE", v6.12), minus
  PTE_DEVMAP (bit 57, removed in v6.17 with the pXX_devmap series);
* ``v6.18`` -- as v6.17, but "arm64, mm: avoid always making PTE dirty in
  pte_mkwrite()" (143937ca51cc) keeps a clean writable entry RDONLY.

Only the non-LPA2, non-52-bit output-address encoding is modelled: OA bits
[49:PAGE_SHIFT] (PTE_ADDR_LOW).
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.granule import Granule
from engine.granule import granule as _granule

# --- hardware bits (pgtable-hwdef.h) -------------------------------------------------
PTE_VALID = 1 << 0
PTE_TYPE_MASK = 3 << 0
PTE_TYPE_PAGE = 3 << 0
PTE_TABLE_BIT = 1 << 1
PTE_ATTRINDX_MASK = 7 << 2
PTE_NS = 1 << 5
PTE_USER = 1 << 6  # AP[1]
PTE_RDONLY = 1 << 7  # AP[2]
PTE_SHARED = 3 << 8  # SH[1:0], inner shareable
PTE_AF = 1 << 10
PTE_NG = 1 << 11
PTE_GP = 1 << 50  # BTI guarded page
PTE_DBM = 1 << 51
PTE_WRITE = PTE_DBM  # Linux uses DBM as its "writable" bit
PTE_CONT = 1 << 52
PTE_PXN = 1 << 53
PTE_UXN = 1 << 54
PTE_PO_IDX_MASK = 7 << 60  # FEAT_S1POE protection key index

# --- software bits (pgtable-prot.h) --------------------------------------------------
PTE_DIRTY = 1 << 55
PTE_SPECIAL = 1 << 56
PTE_DEVMAP = 1 << 57  # until v6.16 (Layout.has_devmap); unused by ptlab's mm model
PTE_PROT_NONE_V69 = 1 << 58  # v6.9 only, meaningful when !VALID
PTE_UFFD_WP = 1 << 58  # v6.10+
PTE_PRESENT_INVALID = PTE_NG  # v6.10+, meaningful when !VALID
PTE_SWBITS_MASK = (1 << 63) | (0xF << 55)

PTE_SWP_EXCLUSIVE = 1 << 2
PTE_SWP_UFFD_WP = 1 << 3  # v6.10+

# MAIR indices (arch/arm64/include/asm/memory.h)
MT_NORMAL = 0
MT_NORMAL_TAGGED = 1
MT_NORMAL_NC = 2
MT_DEVICE_nGnRnE = 3
MT_DEVICE_nGnRE = 4


def PTE_ATTRINDX(t: int) -> int:
    return (t & 7) << 2


_PROT_DEFAULT = PTE_TYPE_PAGE | PTE_AF | PTE_SHARED
_PAGE_DEFAULT = _PROT_DEFAULT | PTE_ATTRINDX(MT_NORMAL)  # 0x703

# --- user protections (pgtable-prot.h, non-LPA2) ---------------------------------------
PAGE_READONLY = _PAGE_DEFAULT | PTE_USER | PTE_RDONLY | PTE_NG | PTE_PXN | PTE_UXN
PAGE_READONLY_EXEC = _PAGE_DEFAULT | PTE_USER | PTE_RDONLY | PTE_NG | PTE_PXN
PAGE_SHARED = _PAGE_DEFAULT | PTE_USER | PTE_RDONLY | PTE_NG | PTE_PXN | PTE_UXN | PTE_WRITE
PAGE_SHARED_EXEC = _PAGE_DEFAULT | PTE_USER | PTE_RDONLY | PTE_NG | PTE_PXN | PTE_WRITE
PAGE_EXECONLY = _PAGE_DEFAULT | PTE_RDONLY | PTE_NG | PTE_PXN
# PAGE_NONE: (_PAGE_DEFAULT & ~PTE_VALID) | PTE_PRESENT_INVALID | PTE_RDONLY | PTE_NG | PTE_PXN | PTE_UXN
PAGE_NONE = (_PAGE_DEFAULT & ~PTE_VALID) | PTE_PRESENT_INVALID | PTE_RDONLY | PTE_NG | PTE_PXN | PTE_UXN
PAGE_NONE_V69 = (_PAGE_DEFAULT & ~PTE_VALID) | PTE_PROT_NONE_V69 | PTE_RDONLY | PTE_NG | PTE_PXN | PTE_UXN

assert PAGE_READONLY == 0x0060000000000FC3
assert PAGE_SHARED == 0x0068000000000FC3
assert PAGE_NONE == 0x0060000000000F82
assert PAGE_NONE_V69 == 0x0460000000000F82

# Names of every bit that decode() reports, high to low.
BIT_NAMES_PRESENT = (
    (63, "SW63"), (62, "PO_IDX2"), (61, "PO_IDX1"), (60, "PO_IDX0"), (56, "SPECIAL"),
    (55, "DIRTY"), (54, "UXN"), (53, "PXN"), (52, "CONT"), (51, "WRITE(DBM)"),
    (50, "GP"), (11, "NG"), (10, "AF"), (7, "RDONLY"), (6, "USER"), (5, "NS"),
    (0, "VALID"),
)


# --- layout-independent predicates and helpers (pgtable.h) -------------------------------
def pte_none(pte: int) -> bool:
    return pte == 0


def pte_valid(pte: int) -> bool:
    return bool(pte & PTE_VALID)


def pte_cont(pte: int) -> bool:
    return bool(pte & PTE_CONT)


def pte_valid_cont(pte: int) -> bool:
    return (pte & (PTE_VALID | PTE_CONT)) == (PTE_VALID | PTE_CONT)


def pte_young(pte: int) -> bool:
    return bool(pte & PTE_AF)


def pte_special(pte: int) -> bool:
    return bool(pte & PTE_SPECIAL)


def pte_write(pte: int) -> bool:
    return bool(pte & PTE_WRITE)


def pte_rdonly(pte: int) -> bool:
    return bool(pte & PTE_RDONLY)


def pte_user(pte: int) -> bool:
    return bool(pte & PTE_USER)


def pte_user_exec(pte: int) -> bool:
    return not (pte & PTE_UXN)


def pte_hw_dirty(pte: int) -> bool:
    return (pte & (PTE_WRITE | PTE_RDONLY)) == PTE_WRITE


def pte_sw_dirty(pte: int) -> bool:
    return bool(pte & PTE_DIRTY)


def pte_dirty(pte: int) -> bool:
    return bool(pte & PTE_DIRTY) or (pte & (PTE_WRITE | PTE_RDONLY)) == PTE_WRITE


def pte_tagged(pte: int) -> bool:
    return (pte & PTE_ATTRINDX_MASK) == PTE_ATTRINDX(MT_NORMAL_TAGGED)


def pte_valid_not_user(pte: int) -> bool:
    return (pte & (PTE_VALID | PTE_USER | PTE_UXN)) == (PTE_VALID | PTE_UXN)


def pte_same(a: int, b: int) -> bool:
    return a == b


def pte_mkclean(pte: int) -> int:
    return (pte & ~PTE_DIRTY) | PTE_RDONLY


def pte_mkdirty(pte: int) -> int:
    pte |= PTE_DIRTY
    if pte & PTE_WRITE:
        pte &= ~PTE_RDONLY
    return pte


def pte_mkold(pte: int) -> int:
    return pte & ~PTE_AF


def pte_mkyoung(pte: int) -> int:
    return pte | PTE_AF


def pte_mkspecial(pte: int) -> int:
    return pte | PTE_SPECIAL


def pte_mkcont(pte: int) -> int:
    return pte | PTE_CONT


def pte_mknoncont(pte: int) -> int:
    return pte & ~PTE_CONT


def pte_wrprotect(pte: int) -> int:
    # Move hardware dirtiness into the software DIRTY bit before dropping write.
    if (pte & (PTE_WRITE | PTE_RDONLY)) == PTE_WRITE:
        pte |= PTE_DIRTY
    return (pte & ~PTE_WRITE) | PTE_RDONLY


def pte_mkexec(pte: int) -> int:
    return pte & ~PTE_UXN


# --- output address ---------------------------------------------------------------------
def pte_pfn(pte: int, granule: int | str | Granule = 4096) -> int:
    g = _granule(granule)
    return (pte & g.pte_addr_low) >> g.page_shift


def pfn_pte(pfn: int, prot: int, granule: int | str | Granule = 4096) -> int:
    g = _granule(granule)
    return ((pfn << g.page_shift) & g.pte_addr_low) | prot


def pte_pgprot(pte: int, granule: int | str | Granule = 4096) -> int:
    return pte & ~_granule(granule).pte_addr_low


def pte_advance_pfn(pte: int, nr: int, granule: int | str | Granule = 4096) -> int:
    g = _granule(granule)
    return pfn_pte(pte_pfn(pte, g) + nr, pte & ~g.pte_addr_low, g)


def pte_leaf_size(pte: int, granule: int | str | Granule = 4096) -> int:
    g = _granule(granule)
    return g.cont_pte_size if pte & PTE_CONT else g.page_size


# --- layout-dependent parts ----------------------------------------------------------------
@dataclass(frozen=True)
class Layout:
    """Descriptor encoding that differs between kernel releases."""

    name: str
    protnone_bit: int  # bit that marks a present-but-invalid entry (with VALID=0)
    has_uffd_wp: bool
    mkwrite_keeps_clean: bool  # v6.18 pte_mkwrite_novma change
    swp_type_shift: int
    swp_offset_shift: int
    swp_offset_bits: int
    has_po_idx: bool  # POE key bits in pte_modify's mask (v6.12+)
    has_devmap: bool = False  # PTE_DEVMAP, bit 57 (until v6.16)

    @property
    def page_none(self) -> int:
        return PAGE_NONE_V69 if self.protnone_bit == PTE_PROT_NONE_V69 else PAGE_NONE

    # predicates
    def pte_present_invalid(self, pte: int) -> bool:
        return (pte & (PTE_VALID | self.protnone_bit)) == self.protnone_bit

    def pte_present(self, pte: int) -> bool:
        # pte_valid() || pte_present_invalid(), without a call for the valid case:
        # the fork and zap loops ask once per PTE
        if pte & PTE_VALID:
            return True
        return (pte & self.protnone_bit) == self.protnone_bit

    def pte_protnone(self, pte: int) -> bool:
        if not self.pte_present_invalid(pte):
            return False
        if self.protnone_bit == PTE_PROT_NONE_V69:
            return True  # v6.9: the PTE_PROT_NONE bit test alone
        # v6.10+: present_invalid && !pte_user && !pte_user_exec
        return not (pte & PTE_USER) and bool(pte & PTE_UXN)

    def pte_uffd_wp(self, pte: int) -> bool:
        return self.has_uffd_wp and bool(pte & PTE_UFFD_WP)

    def is_swap_pte(self, pte: int) -> bool:
        return pte != 0 and not self.pte_present(pte)

    # transformers
    def pte_mkwrite_novma(self, pte: int) -> int:
        pte |= PTE_WRITE
        if not self.mkwrite_keeps_clean or (pte & PTE_DIRTY):
            pte &= ~PTE_RDONLY
        return pte

    def pte_mkinvalid(self, pte: int) -> int:
        return (pte | self.protnone_bit) & ~PTE_VALID

    def pte_mkuffd_wp(self, pte: int) -> int:
        if not self.has_uffd_wp:
            raise ValueError(f"uffd-wp does not exist in the {self.name} layout")
        return pte_wrprotect(pte | PTE_UFFD_WP)

    def pte_clear_uffd_wp(self, pte: int) -> int:
        return pte & ~PTE_UFFD_WP if self.has_uffd_wp else pte

    def modify_mask(self) -> int:
        mask = (PTE_USER | PTE_PXN | PTE_UXN | PTE_RDONLY | self.protnone_bit | PTE_VALID
                | PTE_WRITE | PTE_GP | PTE_ATTRINDX_MASK)
        if self.has_po_idx:
            mask |= PTE_PO_IDX_MASK
        return mask

    def pte_modify(self, pte: int, newprot: int) -> int:
        mask = self.modify_mask()
        if pte_hw_dirty(pte):
            pte |= PTE_DIRTY
        pte = (pte & ~mask) | (newprot & mask)
        if pte & PTE_DIRTY:
            pte = pte_mkdirty(pte)
        return pte

    # swap entries (__swp_entry / __swp_type / __swp_offset)
    def swp_entry_to_pte(self, type_: int, offset: int, exclusive: bool = False,
                         uffd_wp: bool = False) -> int:
        if not 0 <= type_ < 32:
            raise ValueError("swap type must be 0..31")
        if not 0 <= offset < (1 << self.swp_offset_bits):
            raise ValueError("swap offset out of range")
        pte = (type_ << self.swp_type_shift) | (offset << self.swp_offset_shift)
        if exclusive:
            pte |= PTE_SWP_EXCLUSIVE
        if uffd_wp:
            if not self.has_uffd_wp:
                raise ValueError(f"swap uffd-wp does not exist in the {self.name} layout")
            pte |= PTE_SWP_UFFD_WP
        return pte

    def swp_type(self, pte: int) -> int:
        return (pte >> self.swp_type_shift) & 0x1F

    def swp_offset(self, pte: int) -> int:
        return (pte >> self.swp_offset_shift) & ((1 << self.swp_offset_bits) - 1)

    def swp_exclusive(self, pte: int) -> bool:
        return bool(pte & PTE_SWP_EXCLUSIVE)


LAYOUT_V69 = Layout("v6.9", PTE_PROT_NONE_V69, False, False, 3, 8, 50, False, True)
LAYOUT_V610 = Layout("v6.10", PTE_PRESENT_INVALID, True, False, 6, 12, 50, False, True)
# v6.12 as its stable series ships it (Debian's 6.12.117): POE in pte_modify, PTE_DEVMAP
# still there, and 143937ca51cc "arm64, mm: avoid always making PTE dirty in
# pte_mkwrite()" backported from v6.18 (arch/arm64/include/asm/pgtable.h in
# linux-source-6.12; found by ptlab crosscheck: a swapped-in page came back clean)
LAYOUT_V612 = Layout("v6.12", PTE_PRESENT_INVALID, True, True, 6, 12, 50, True, True)
LAYOUT_V617 = Layout("v6.17", PTE_PRESENT_INVALID, True, False, 6, 12, 50, True, False)
LAYOUT_V618 = Layout("v6.18", PTE_PRESENT_INVALID, True, True, 6, 12, 50, True, False)
LAYOUTS = {lay.name: lay for lay in (LAYOUT_V69, LAYOUT_V610, LAYOUT_V612, LAYOUT_V617, LAYOUT_V618)}

# Newest-layout convenience aliases, so ``from engine.pte import pte_mkwrite`` works.
pte_mkwrite = LAYOUT_V618.pte_mkwrite_novma
pte_mkwrite_novma = LAYOUT_V618.pte_mkwrite_novma
pte_present = LAYOUT_V618.pte_present
pte_protnone = LAYOUT_V618.pte_protnone
pte_mkinvalid = LAYOUT_V618.pte_mkinvalid
pte_modify = LAYOUT_V618.pte_modify


def protection_map(prot: str, shared: bool, exec_: bool = False) -> int:
    """vm_get_page_prot() for the usual user protections (arch/arm64/mm/mmap.c).

    Private writable mappings start read-only and rely on CoW (there is no
    PAGE_COPY on arm64); PAGE_NONE is the newest layout's value (callers with
    an older layout substitute ``layout.page_none``).
    """
    if prot == "none":
        return PAGE_NONE
    if prot == "r":
        return PAGE_READONLY_EXEC if exec_ else PAGE_READONLY
    if prot == "rw":
        if shared:
            return PAGE_SHARED_EXEC if exec_ else PAGE_SHARED
        return PAGE_READONLY_EXEC if exec_ else PAGE_READONLY
    raise ValueError(f"unknown protection {prot!r} (use rw, r or none)")
