# SPDX-License-Identifier: GPL-2.0-only
"""The arch layer's view of an address space (struct mm_struct)."""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.granule import Granule
from engine.state.pagetable import PageTable


@dataclass(eq=False)
class MMStruct:
    """Page tables plus what the arch code reads from an mm.

    ``is_user`` is contpte.c's mm_is_user(): False for init_mm and efi_mm,
    whose mappings are never folded, unfolded or painted CONT.
    """

    g: Granule
    asid: int
    is_user: bool = True
    name: str = "mm"
    pt: PageTable = field(init=False)

    def __post_init__(self) -> None:
        self.pt = PageTable(self.g)
