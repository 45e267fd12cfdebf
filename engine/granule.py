# SPDX-License-Identifier: GPL-2.0-only
"""Translation granules (4K, 16K, 64K) and the kernel's derived constants.

Values follow arch/arm64/include/asm/pgtable-hwdef.h: PTRS_PER_PTE is
1 << (PAGE_SHIFT - 3), CONT_PTE_SHIFT defaults to 4/7/5 (arch/arm64/Kconfig
ARM64_CONT_PTE_SHIFT) and CONT_PMD_SHIFT to 4/5/5.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property


@dataclass(frozen=True)
class Granule:
    # The derived constants are cached_property: hot paths read g.pmd_shift and
    # friends per fault or per PTE, and a property would recompute them each time
    # (cached_property writes the instance __dict__ directly, frozen or not).

    name: str
    page_shift: int
    cont_pte_log2: int  # CONFIG_ARM64_CONT_PTE_SHIFT
    cont_pmd_log2: int  # CONFIG_ARM64_CONT_PMD_SHIFT
    tg: int  # TLBI TG/TTL granule encoding: 1=4K, 2=16K, 3=64K (get_trans_granule)
    va_levels: int  # translation levels for a 48-bit VA

    @cached_property
    def page_size(self) -> int:
        return 1 << self.page_shift

    @cached_property
    def page_mask(self) -> int:
        return ~(self.page_size - 1)

    @cached_property
    def ptrs_per_pte(self) -> int:
        return 1 << (self.page_shift - 3)

    @cached_property
    def cont_ptes(self) -> int:
        return 1 << self.cont_pte_log2

    @cached_property
    def cont_pte_shift(self) -> int:
        return self.page_shift + self.cont_pte_log2

    @cached_property
    def cont_pte_size(self) -> int:
        return 1 << self.cont_pte_shift

    @cached_property
    def cont_pte_mask(self) -> int:
        return ~(self.cont_pte_size - 1)

    @cached_property
    def pmd_shift(self) -> int:
        # (PAGE_SHIFT - 3) * (4 - 2) + 3
        return (self.page_shift - 3) * 2 + 3

    @cached_property
    def pmd_size(self) -> int:
        return 1 << self.pmd_shift

    @cached_property
    def pmd_order(self) -> int:
        return self.pmd_shift - self.page_shift

    @cached_property
    def cont_pmds(self) -> int:
        return 1 << self.cont_pmd_log2

    @cached_property
    def cont_pmd_size(self) -> int:
        return self.cont_pmds * self.pmd_size

    @cached_property
    def pud_shift(self) -> int:
        return (self.page_shift - 3) * 3 + 3

    @cached_property
    def pud_size(self) -> int:
        return 1 << self.pud_shift

    @cached_property
    def max_dvm_ops(self) -> int:
        # MAX_DVM_OPS == PTRS_PER_PTE (tlbflush.h)
        return self.ptrs_per_pte

    @cached_property
    def pte_addr_low(self) -> int:
        # PTE_ADDR_LOW: output address bits [49:PAGE_SHIFT] (non-52-bit builds)
        return ((1 << (50 - self.page_shift)) - 1) << self.page_shift

    def __str__(self) -> str:
        return self.name


G4K = Granule("4K", 12, 4, 4, 1, 4)
G16K = Granule("16K", 14, 7, 5, 2, 4)
G64K = Granule("64K", 16, 5, 5, 3, 3)

GRANULES: dict[int, Granule] = {g.page_size: g for g in (G4K, G16K, G64K)}
_BY_NAME = {g.name.lower(): g for g in (G4K, G16K, G64K)}


def granule(value: int | str | Granule) -> Granule:
    """Accept 4096, "4K", "4k", "4096" or a Granule; raise ValueError otherwise."""
    if isinstance(value, Granule):
        return value
    if isinstance(value, int):
        if value in GRANULES:
            return GRANULES[value]
    elif isinstance(value, str):
        key = value.strip().lower()
        if key in _BY_NAME:
            return _BY_NAME[key]
        if key.isdigit() and int(key) in GRANULES:
            return GRANULES[int(key)]
        if key.endswith("kb") and key[:-1] in _BY_NAME:
            return _BY_NAME[key[:-1]]
    raise ValueError(f"unknown granule {value!r} (use 4K, 16K or 64K)")
