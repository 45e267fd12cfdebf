# SPDX-License-Identifier: GPL-2.0-only
"""The hardware table walker's view of one last-level descriptor.

For an access that misses the TLB the walker reads the descriptor and, with
FEAT_HAFDBS, updates it in place: it sets AF, and on a write to an entry whose
DBM bit (PTE_WRITE) is set it clears PTE_RDONLY ("hardware dirty"). For a
contiguous block the architecture lets the update land on any member; ptlab
updates the entry that was walked, which is the case the 2026 set_access_flags
fix is about.

The fault rules are Linux's view of permissions: a write needs PTE_WRITE (an
entry is only ever RDONLY=0 because it is writable and dirty), EL0 needs
PTE_USER. Without hardware AF an Access flag fault is raised before any
Permission fault (the AF check belongs to the walk, the permission check
comes after it; QEMU's get_phys_addr_lpae() in target/arm/ptw.c orders them the
same way). A faulting access updates nothing. With hardware AF, QEMU sets AF
even when the access then takes a Permission fault; ptlab does not (believed
to be an architecturally permitted choice -- unverified against the Arm ARM,
see docs/fidelity.md).
"""

from __future__ import annotations

from engine.pte import PTE_AF, PTE_RDONLY, PTE_USER, PTE_VALID, PTE_WRITE

# fault reasons
OK = ""
TRANSLATION = "translation"
ACCESS_FLAG = "access_flag"
PERMISSION = "permission"


def walk_descriptor(desc: int, write: bool, hw_af: bool, hw_dbm: bool) -> tuple[int, str]:
    """Return (new descriptor value, fault reason or "")."""
    if not desc & PTE_VALID:
        return desc, TRANSLATION
    if not desc & PTE_AF and not hw_af:
        return desc, ACCESS_FLAG
    if not desc & PTE_USER:
        return desc, PERMISSION
    if write:
        if not desc & PTE_WRITE:
            return desc, PERMISSION
        if desc & PTE_RDONLY and not hw_dbm:
            return desc, PERMISSION
    new = desc | PTE_AF
    if write and new & PTE_RDONLY:
        new &= ~PTE_RDONLY
    return new, OK
