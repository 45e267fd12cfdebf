# SPDX-License-Identifier: GPL-2.0-only
"""Decode a raw descriptor into kernel-named fields, like crash's ``pte``
command but aware of the contiguous bit and of each profile's layout."""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.granule import Granule
from engine.pte import (
    PTE_AF,
    PTE_ATTRINDX_MASK,
    PTE_CONT,
    PTE_DEVMAP,
    PTE_DIRTY,
    PTE_GP,
    PTE_NG,
    PTE_NS,
    PTE_PO_IDX_MASK,
    PTE_PXN,
    PTE_RDONLY,
    PTE_SHARED,
    PTE_SPECIAL,
    PTE_SWP_EXCLUSIVE,
    PTE_SWP_UFFD_WP,
    PTE_UFFD_WP,
    PTE_USER,
    PTE_UXN,
    PTE_VALID,
    PTE_WRITE,
    Layout,
)

MAIR_NAMES = {0: "MT_NORMAL", 1: "MT_NORMAL_TAGGED", 2: "MT_NORMAL_NC", 3: "MT_DEVICE_nGnRnE",
              4: "MT_DEVICE_nGnRE"}


@dataclass
class Decoded:
    raw: int
    kind: str  # "none", "present", "present-invalid" (PROT_NONE), "swap", "migration"...
    granule: str
    layout: str
    fields: dict[str, object] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)  # kernel bit names that are set
    summary: str = ""

    def as_dict(self) -> dict[str, object]:
        return {"raw": f"{self.raw:#018x}", "kind": self.kind, "granule": self.granule,
                "layout": self.layout, "flags": self.flags, "fields": self.fields,
                "summary": self.summary}


_PRESENT_BITS = (
    (PTE_VALID, "PTE_VALID"), (PTE_NS, "NS"), (PTE_USER, "PTE_USER"), (PTE_RDONLY, "PTE_RDONLY"),
    (PTE_AF, "PTE_AF"), (PTE_NG, "PTE_NG"), (PTE_GP, "PTE_GP"), (PTE_WRITE, "PTE_WRITE(DBM)"),
    (PTE_CONT, "PTE_CONT"), (PTE_PXN, "PTE_PXN"), (PTE_UXN, "PTE_UXN"), (PTE_DIRTY, "PTE_DIRTY"),
    (PTE_SPECIAL, "PTE_SPECIAL"),
)


# include/linux/swap.h: the top swap types are not swap files.
#   MAX_SWAPFILES = (1 << MAX_SWAPFILES_SHIFT) - SWP_DEVICE_NUM - SWP_MIGRATION_NUM
#                   - SWP_HWPOISON_NUM - SWP_PTE_MARKER_NUM
# with MAX_SWAPFILES_SHIFT 5 and CONFIG_DEVICE_PRIVATE, CONFIG_MIGRATION and
# CONFIG_MEMORY_FAILURE enabled (a typical arm64 distro config; PTE markers are
# unconditional since v6.5). Up to v6.14 SWP_DEVICE_NUM is 4 (device private
# write/read, device exclusive write/read): MAX_SWAPFILES = 32-4-3-1-1 = 23.
# v6.15 merged "mm: use single SWP_DEVICE_EXCLUSIVE entry type" (David
# Hildenbrand): SWP_DEVICE_NUM 3, MAX_SWAPFILES = 24. (A 2026 series adding
# device-private migration types, SWP_DEVICE_NUM 6 -> 21, is not assumed to be
# in v7.0 -- unsure.) Order: HWPOISON = MAX_SWAPFILES, then the 3 migration
# types, the device types, the PTE marker.
MAX_SWAPFILES_BY_PROFILE = {"baseline": 23, "seed-basic": 23, "seed-batch": 23, "seed-inline": 23,
                            "seed-fold": 23, "v6.9": 23, "v6.10": 23, "v6.17": 24, "v6.19": 24,
                            "v7.0": 24}


def max_swapfiles(profile: object = None, layout: Layout | None = None) -> int:
    """MAX_SWAPFILES of a kernel profile (or, without one, a guess from the layout)."""
    name = getattr(profile, "name", profile)
    if isinstance(name, str) and name in MAX_SWAPFILES_BY_PROFILE:
        return MAX_SWAPFILES_BY_PROFILE[name]
    if layout is not None and layout.name in ("v6.9", "v6.10"):  # v6.17+ layouts: 24
        return 23
    return 24


def special_swap_types(max_swapfiles: int) -> dict[int, str]:
    """Swap type -> what it really is, for the types at and above MAX_SWAPFILES."""
    m = max_swapfiles
    out = {m: "hwpoison", m + 1: "migration (read)", m + 2: "migration (read, exclusive)",
           m + 3: "migration (write)", m + 4: "device private (write)", m + 5: "device private (read)"}
    if m == 23:
        out.update({29: "device exclusive (write)", 30: "device exclusive (read)"})
    else:
        out[m + 6] = "device exclusive"
    out[31] = "pte marker"
    return out


def decode(raw: int, g: Granule, layout: Layout, profile: object = None) -> Decoded:
    """Decode one descriptor; ``profile`` (a KernelProfile or its name) picks
    the swap-type numbering (see :data:`MAX_SWAPFILES_BY_PROFILE`)."""
    if not 0 <= raw < 1 << 64:
        raise ValueError("a descriptor is a 64-bit value")
    max_swp = max_swapfiles(profile, layout)
    d = Decoded(raw, "none", g.name, layout.name)
    if raw == 0:
        d.summary = "none (pte_none)"
        return d
    if layout.pte_present(raw):
        d.kind = "present" if raw & PTE_VALID else "present-invalid"
        for bit, name in _PRESENT_BITS:
            if raw & bit:
                d.flags.append(name)
        if not raw & PTE_VALID:
            d.flags.append("PTE_PROT_NONE" if layout.name == "v6.9" else "PTE_PRESENT_INVALID")
        elif layout.has_devmap and raw & PTE_DEVMAP:
            d.flags.append("PTE_DEVMAP")
        if layout.has_uffd_wp and raw & PTE_UFFD_WP:
            d.flags.append("PTE_UFFD_WP")
        pfn = (raw & g.pte_addr_low) >> g.page_shift
        attr = (raw & PTE_ATTRINDX_MASK) >> 2
        sh = (raw & PTE_SHARED) >> 8
        po = (raw & PTE_PO_IDX_MASK) >> 60
        write = bool(raw & PTE_WRITE)
        dirty = bool(raw & PTE_DIRTY) or (write and not raw & PTE_RDONLY)
        # v6.9's pte_protnone() is (pte & (PTE_VALID | PTE_PROT_NONE)) == PTE_PROT_NONE;
        # from v6.10 it also needs !pte_user && !pte_user_exec (engine.pte.Layout).
        protnone = (layout.pte_present_invalid(raw) if layout.name == "v6.9"
                    else layout.pte_protnone(raw))
        d.fields = {
            "pfn": pfn, "phys": pfn << g.page_shift, "attrindx": f"{attr} ({MAIR_NAMES.get(attr, '?')})",
            "sh": {0: "non-shareable", 2: "outer", 3: "inner"}.get(sh, "reserved"),
            "po_idx": po, "young": bool(raw & PTE_AF), "dirty": dirty,
            "hw_dirty": write and not raw & PTE_RDONLY, "write": write,
            "user": bool(raw & PTE_USER), "user_exec": not raw & PTE_UXN, "cont": bool(raw & PTE_CONT),
            "special": bool(raw & PTE_SPECIAL), "protnone": protnone,
            "leaf_size": g.cont_pte_size if raw & PTE_CONT else g.page_size,
        }
        perms = ("r" if raw & PTE_USER else "-") + ("w" if write else "-") + (
            "x" if not raw & PTE_UXN else "-")
        state = []
        if d.fields["protnone"]:
            state.append("PROT_NONE")
        elif not raw & PTE_VALID:
            state.append("present-invalid")
        if raw & PTE_CONT:
            state.append("CONT" if raw & PTE_VALID else "CONT(inert: not valid)")
        if raw & PTE_AF:
            state.append("young")
        if dirty:
            state.append("dirty")
        if raw & PTE_SPECIAL:
            state.append("special")
        d.summary = f"pfn {pfn:#x} {perms} {' '.join(state)}".rstrip()
        return d
    # not present: a swap-type entry
    if raw & 3:
        d.kind = "invalid"
        d.summary = "not a Linux descriptor (VALID=0 but type bits set)"
        return d
    d.kind = "swap"
    typ = layout.swp_type(raw)
    off = layout.swp_offset(raw)
    d.fields = {"swp_type": typ, "swp_offset": off, "exclusive": bool(raw & PTE_SWP_EXCLUSIVE),
                "max_swapfiles": max_swp}
    if raw & PTE_SWP_EXCLUSIVE:
        d.flags.append("PTE_SWP_EXCLUSIVE")
    if layout.has_uffd_wp:
        d.fields["uffd_wp"] = bool(raw & PTE_SWP_UFFD_WP)
        if raw & PTE_SWP_UFFD_WP:
            d.flags.append("PTE_SWP_UFFD_WP")
    special = special_swap_types(max_swp)
    what = special.get(typ)
    if what is not None and what.startswith("migration"):
        d.kind = "migration"
    d.fields["entry"] = what or "swap"
    d.summary = f"{what or 'swap'} type {typ} offset {off:#x}" + (
        " exclusive" if raw & PTE_SWP_EXCLUSIVE else "")
    if raw & PTE_CONT:
        d.summary += " (bit 52 lies in the offset field, not CONT)"
    return d
