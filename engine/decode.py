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


def decode(raw: int, g: Granule, layout: Layout) -> Decoded:
    if not 0 <= raw < 1 << 64:
        raise ValueError("a descriptor is a 64-bit value")
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
        elif layout.name == "v6.9" and raw & PTE_DEVMAP:
            d.flags.append("PTE_DEVMAP")
        if layout.has_uffd_wp and raw & PTE_UFFD_WP:
            d.flags.append("PTE_UFFD_WP")
        pfn = (raw & g.pte_addr_low) >> g.page_shift
        attr = (raw & PTE_ATTRINDX_MASK) >> 2
        sh = (raw & PTE_SHARED) >> 8
        po = (raw & PTE_PO_IDX_MASK) >> 60
        write = bool(raw & PTE_WRITE)
        dirty = bool(raw & PTE_DIRTY) or (write and not raw & PTE_RDONLY)
        d.fields = {
            "pfn": pfn, "phys": pfn << g.page_shift, "attrindx": f"{attr} ({MAIR_NAMES.get(attr, '?')})",
            "sh": {0: "non-shareable", 2: "outer", 3: "inner"}.get(sh, "reserved"),
            "po_idx": po, "young": bool(raw & PTE_AF), "dirty": dirty,
            "hw_dirty": write and not raw & PTE_RDONLY, "write": write,
            "user": bool(raw & PTE_USER), "user_exec": not raw & PTE_UXN, "cont": bool(raw & PTE_CONT),
            "special": bool(raw & PTE_SPECIAL), "protnone": layout.pte_protnone(raw),
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
    d.fields = {"swp_type": typ, "swp_offset": off, "exclusive": bool(raw & PTE_SWP_EXCLUSIVE)}
    if raw & PTE_SWP_EXCLUSIVE:
        d.flags.append("PTE_SWP_EXCLUSIVE")
    if layout.has_uffd_wp:
        d.fields["uffd_wp"] = bool(raw & PTE_SWP_UFFD_WP)
        if raw & PTE_SWP_UFFD_WP:
            d.flags.append("PTE_SWP_UFFD_WP")
    # include/linux/swap.h with MAX_SWAPFILES_SHIFT 5 and CONFIG_MIGRATION,
    # CONFIG_MEMORY_FAILURE, CONFIG_DEVICE_PRIVATE and PTE markers enabled
    # (a typical arm64 distro config): MAX_SWAPFILES = 32 - 3 - 3 - 1 - 1 = 24.
    special = {24: "hwpoison", 25: "migration (read)", 26: "migration (read, exclusive)",
               27: "migration (write)", 28: "device private (write)", 29: "device private (read)",
               30: "device exclusive", 31: "pte marker"}
    what = special.get(typ)
    if what is not None and what.startswith("migration"):
        d.kind = "migration"
    d.fields["entry"] = what or "swap"
    d.summary = f"{what or 'swap'} type {typ} offset {off:#x}" + (
        " exclusive" if raw & PTE_SWP_EXCLUSIVE else "")
    if raw & PTE_CONT:
        d.summary += " (bit 52 lies in the offset field, not CONT)"
    return d
