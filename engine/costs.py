# SPDX-License-Identifier: GPL-2.0-only
"""Turn counters into an estimated cycle count for one CPU.

Every counter with a weight in the CPU profile contributes
``weight * count``. Two costs come from the profile pair rather than from a
counter of their own:

* a public ptep wrapper is a real call (``call_outofline``) when the kernel
  profile does not force it inline (``always_inline`` false: seed-basic,
  seed-batch) and contpte is built in; the contpte_* functions of contpte.c
  are always out of line;
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
_PUBLIC = frozenset(Arch.PUBLIC_API)
_CONTPTE = frozenset(n for n in Arch.CONTPTE_FUNCTIONS if n.startswith(("contpte", "__contpte")))


def cycles(counters: Mapping[str, int], profile: KernelProfile, cpu: CpuProfile) -> float:
    w = cpu.weights
    total = 0.0
    outofline = 0
    for key, n in counters.items():
        if not n:
            continue
        if key.startswith("call:"):
            name = key[5:]
            if name in _CONTPTE or (name in _PUBLIC and profile.contpte and not profile.always_inline):
                outofline += n
            continue
        weight = w.get(key)
        if weight:
            total += weight * n
    total += w.get("call_outofline", 0.0) * outofline
    if profile.contpte and profile.auto_fold:
        total += w.get("contpte_check", 0.0) * counters.get("set_ptes_1", 0)
    return total
