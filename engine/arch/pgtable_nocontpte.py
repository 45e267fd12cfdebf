# SPDX-License-Identifier: GPL-2.0-only
"""arch/arm64/include/asm/pgtable.h, ``#else /* CONFIG_ARM64_CONTPTE */``:
every public name is its raw helper.

In the kernel these are ``#define ptep_get __ptep_get`` and so on. ptlab
still records the public name's call event (core mm called ``ptep_get``),
so each alias is a one-line trampoline compiled from this table.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from engine.arch.base import arch_call
from engine.arch.pgtable_generic import PgtableGeneric
from engine.arch.variants import variant, variants_of

# public name -> raw helper (Python name; the kernel's is the comment). The
# table is pgtable.h's #else block, plus ptep_get_lockless(), whose generic
# version (include/linux/pgtable.h) is ptep_get(), here __ptep_get().
NOCONTPTE_ALIASES: dict[str, str] = {
    "ptep_get": "raw_ptep_get",  # __ptep_get
    "ptep_get_lockless": "raw_ptep_get",  # generic: ptep_get()
    "set_pte": "raw_set_pte",  # __set_pte
    "set_ptes": "raw_set_ptes",  # __set_ptes
    "pte_clear": "raw_pte_clear",  # __pte_clear
    "clear_full_ptes": "raw_clear_full_ptes",  # __clear_full_ptes
    "get_and_clear_full_ptes": "raw_get_and_clear_full_ptes",  # __get_and_clear_full_ptes
    "ptep_get_and_clear": "raw_ptep_get_and_clear",  # __ptep_get_and_clear
    "ptep_test_and_clear_young": "raw_ptep_test_and_clear_young",  # __ptep_test_and_clear_young
    "ptep_clear_flush_young": "raw_ptep_clear_flush_young",  # __ptep_clear_flush_young
    "ptep_set_wrprotect": "raw_ptep_set_wrprotect",  # __ptep_set_wrprotect
    "wrprotect_ptes": "raw_wrprotect_ptes",  # __wrprotect_ptes
    "ptep_set_access_flags": "raw_ptep_set_access_flags",  # __ptep_set_access_flags
    "clear_young_dirty_ptes": "raw_clear_young_dirty_ptes",  # __clear_young_dirty_ptes
}
# the aliases of entry points younger than CONFIG_ARM64_CONTPTE itself
_REQUIRES = {"clear_young_dirty_ptes": ("clear_young_dirty_ptes",)}


def _alias(public: str, raw: str, impl: Callable[..., Any]) -> Callable[..., Any]:
    """``def public(self, mm, <raw's arguments>): return self.<raw>(mm, ...)``,
    recorded as a call of ``public``; ``impl`` is raw or, for a raw helper
    with versions, one of them (they share the arguments)."""
    params = list(inspect.signature(impl).parameters)[2:]
    args = ", ".join(params)
    # (plain parameters: arch_call compiles its fast positional wrapper only for those)
    src = (f"def {public}_nocontpte(self, mm, {args}):\n"
           f"    return self.{raw}(mm, {args})\n")
    ns: dict[str, Any] = {}
    exec(compile(src, f"<pgtable.h alias {public}>", "exec"), ns)  # noqa: S102 - our own source
    fn: Callable[..., Any] = ns[f"{public}_nocontpte"]
    fn.__doc__ = f"#define {public} {raw.replace('raw_', '__')}"
    return variant(public, until="contpte", requires=_REQUIRES.get(public, ()))(arch_call(public)(fn))


class PgtableNoContpte(PgtableGeneric):
    """The #else of pgtable.h: the public names, filled in below as aliases of the raw helpers."""


# the raw helpers with versions (engine.arch.raw) are installed by the layer, not defined
_RAW_VERSIONS = variants_of(PgtableNoContpte)
for _public, _raw in NOCONTPTE_ALIASES.items():
    _impl = getattr(PgtableNoContpte, _raw, None)
    if _impl is None:
        _impl = getattr(PgtableNoContpte, _RAW_VERSIONS[_raw][0].attr)
    _fn = _alias(_public, _raw, _impl)
    setattr(PgtableNoContpte, _fn.__name__, _fn)
