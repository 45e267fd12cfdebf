# SPDX-License-Identifier: GPL-2.0-only
"""Example user policy: try to fold when the *first* entry of a block is written."""


class FirstEntry:
    name = "first-entry"
    description = "fold attempt when entry 0 of a block is written"

    def should_try_fold(self, arch, mm, addr, pte):
        return (addr >> arch.page_shift) % arch.cont_ptes == 0 and bool(pte & 1)
