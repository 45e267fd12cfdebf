# SPDX-License-Identifier: GPL-2.0-only
"""Turn counters into an estimated cycle count for one CPU.

Every counter with a weight in the CPU profile contributes
``weight * count``; ``call:<name>`` counters may carry a weight of their own
for the body of that function (e.g. the CONT_PTES-entry gather loop of
contpte_ptep_get()). Two costs come from the profile pair rather than from
a counter of their own:

* out-of-line calls (``call_outofline`` each): the contpte_* functions of
  contpte.c are always real calls. Before "arm64/mm: __always_inline to
  improve fork() perf" (b972fc6afba0, v6 17/18; kernel profile field
  ``always_inline``), three pgtable.h helpers were ``static inline`` and, as
  that commit says, not inlined by the compiler: set_ptes(),
  wrprotect_ptes() (the arm64 override, from the batch-API stage on) and
  contpte_try_unfold(). contpte_try_unfold() runs in set_ptes(nr == 1),
  clear_full_ptes(nr == 1) and get_and_clear_full_ptes(nr == 1) (batch
  APIs), ptep_get_and_clear(), pte_clear() and -- before the batch APIs --
  ptep_set_wrprotect(). The other wrappers (ptep_get() ...) are small
  enough to be inlined;
* ``contpte_check``: the valign/palign tests every set_ptes(nr == 1) runs on a
  contpte kernel with automatic folding before it may call
  __contpte_try_fold.
"""

from __future__ import annotations

from collections.abc import Mapping

from engine.arch.profiles import KernelProfile
from engine.arch.ptep import Arch
from engine.hw.cpus import CpuProfile

# Names counted as "call:<name>" by engine.events.count_events.
# contpte_try_unfold_partial() is static inline in pgtable.h (the compiler may
# still build it out of line; its call events exist for the crosscheck).
_CONTPTE = frozenset(n for n in Arch.CONTPTE_FUNCTIONS if n.startswith(("contpte", "__contpte"))
                     and n != "contpte_try_unfold_partial")
_CONTPTE_KEYS = frozenset("call:" + n for n in _CONTPTE)


def outofline_calls(counters: Mapping[str, int], profile: KernelProfile) -> int:
    """Real function calls among the arch entry points the counters record."""
    n = sum(v for k, v in counters.items() if k in _CONTPTE_KEYS)
    if profile.contpte and not profile.always_inline:
        g = counters.get
        n += g("call:set_ptes", 0)
        if profile.batch_apis:
            n += g("call:wrprotect_ptes", 0)
        # contpte_try_unfold()
        n += (g("set_ptes_1", 0) + g("call:ptep_get_and_clear", 0) + g("call:pte_clear", 0))
        if profile.batch_apis:
            n += g("clear_full_ptes_1", 0) + g("get_and_clear_full_ptes_1", 0)
        else:
            n += g("call:ptep_set_wrprotect", 0)
    return n


def cycles(counters: Mapping[str, int], profile: KernelProfile, cpu: CpuProfile) -> float:
    w = cpu.weights
    total = 0.0
    for key, n in counters.items():
        if not n:
            continue
        weight = w.get(key)
        if weight:
            total += weight * n
    total += w.get("call_outofline", 0.0) * outofline_calls(counters, profile)
    if profile.contpte and profile.auto_fold:
        total += w.get("contpte_check", 0.0) * counters.get("set_ptes_1", 0)
    return total
