# SPDX-License-Identifier: GPL-2.0-only
"""ptlab-owned seam: a racing CPU for contpte_ptep_get_lockless().

The kernel reads a contiguous block without the PTL and retries when another
CPU changed it under its feet. The ``gup ... race`` verb (engine.verbs)
interleaves that other CPU here: lockless_ptep_get() is the __ptep_get() of
contpte_ptep_get_lockless(), after calling ``lockless_hook`` if one is set.
"""

from __future__ import annotations

from engine.arch.raw import RawHelpers
from engine.state.mmstruct import MMStruct


class LocklessSeam(RawHelpers):
    def lockless_ptep_get(self, mm: MMStruct, addr: int) -> int:
        """__ptep_get() as contpte_ptep_get_lockless() calls it, after giving
        a racing CPU (``lockless_hook``) its chance to write."""
        if self.lockless_hook is not None:
            self.lockless_hook()
        return self.raw_ptep_get(mm, addr)
