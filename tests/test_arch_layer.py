# SPDX-License-Identifier: GPL-2.0-only
"""The arch layer is composed once per kernel profile (engine.arch.layer):
each kernel name gets one whole-function version, chosen from
FEATURE_HISTORY rows, and no kernel-named body tests the profile."""

import inspect
import re
from dataclasses import fields, replace
from pathlib import Path

import pytest

from engine import Simulator
from engine.arch import PROFILES, Arch, MissingEntryPoint
from engine.arch.layer import compose
from engine.arch.profiles import FEATURE_HISTORY, KernelProfile
from engine.arch.variants import first_row, variants_of
from engine.policy import MainlinePolicy

ARCH = Path(__file__).resolve().parents[1] / "engine" / "arch"
# the modules written in the kernel's shape: no body may ask the profile which kernel it is
KERNEL_SHAPED = ("contpte.py", "pgtable_contpte.py", "pgtable_generic.py", "pgtable_nocontpte.py",
                 "mmu.py", "raw.py", "tlbflush.py")


def boolean_flips():
    fields = sorted({r[0] for r in FEATURE_HISTORY if isinstance(r[1], bool)})
    for p in PROFILES.values():
        for f in fields:
            yield replace(p, **{f: not getattr(p, f)})


def test_every_profile_and_every_one_row_flip_composes_without_ambiguity():
    """``ptlab crosscheck --features`` flips one row at a time: each such
    profile must still get exactly one version of every function."""
    for p in [*PROFILES.values(), *boolean_flips()]:
        cls = compose(Arch, p)
        assert set(cls.LAYER) <= set(variants_of(Arch))


def test_a_profile_is_composed_once_and_its_class_names_it():
    a = Simulator(kernel="v6.9").arch
    b = Simulator(kernel="v6.9").arch
    assert type(a) is type(b) and type(a).__name__ == "Arch[v6.9]" and isinstance(a, Arch)


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_each_public_name_is_installed_or_missing_by_name(name):
    arch = Simulator(kernel=name).arch
    layer = type(arch).LAYER
    for api in Arch.PUBLIC_API:
        if api in layer:
            assert getattr(type(arch), api) is getattr(Arch, layer[api].attr)
        else:
            with pytest.raises(MissingEntryPoint, match=api):
                getattr(arch, api)(None, 0)


def test_versions_follow_the_feature_history_rows():
    def attr(kernel, name):
        return type(Simulator(kernel=kernel).arch).LAYER[name].attr

    assert attr("baseline", "set_ptes") == "set_ptes_nocontpte"
    assert attr("seed-basic", "clear_full_ptes") == "clear_full_ptes_generic"
    assert attr("seed-basic", "ptep_set_wrprotect") == "ptep_set_wrprotect_contpte"
    assert attr("seed-batch", "ptep_set_wrprotect") == "ptep_set_wrprotect_batch"
    assert attr("seed-inline", "contpte_try_fold") == "contpte_try_fold_none"
    assert attr("v6.9", "contpte_ptep_get") == "contpte_ptep_get_v6_9"
    assert attr("v6.17", "contpte_ptep_get") == "contpte_ptep_get_v6_17"
    assert attr("v6.9", "contpte_convert") == "contpte_convert_v6_9"
    assert attr("v6.17", "contpte_convert") == "contpte_convert_v6_17"
    assert attr("v6.17", "contpte_ptep_set_access_flags") == "contpte_ptep_set_access_flags_v6_9"
    assert attr("v6.19", "contpte_ptep_set_access_flags") == "contpte_ptep_set_access_flags_v6_19"
    assert attr("v7.0", "contpte_ptep_set_access_flags") == "contpte_ptep_set_access_flags_v7_0"
    assert attr("v6.19", "ptep_test_and_clear_young") == "ptep_test_and_clear_young_contpte"
    assert attr("v7.0", "ptep_test_and_clear_young") == "ptep_test_and_clear_young_v7_0"
    assert "contpte_ptep_test_and_clear_young" not in type(Simulator(kernel="v7.0").arch).LAYER


def test_flipping_local_access_flush_alone_on_v7_0_keeps_the_broadcast_block_flush():
    """A profile no kernel had (raw sub-entry check, broadcast flush) still
    runs v7.0's contpte_ptep_set_access_flags(), and its block flush is the
    pre-v6.19 broadcast one: each row flips on its own."""
    cls = compose(Arch, replace(PROFILES["v7.0"], local_access_flush=False))
    assert cls.LAYER["contpte_ptep_set_access_flags"].attr == "contpte_ptep_set_access_flags_v7_0"
    assert cls.LAYER["local_flush_tlb_contpte"].attr == "broadcast_flush_tlb_contpte"


def test_a_fold_policy_shadows_contpte_try_fold_and_leaves_the_kernels_alone():
    arch = Simulator(kernel="v7.0").arch
    kernel_fold = type(arch).contpte_try_fold
    arch.fold_policy = MainlinePolicy()
    assert arch.contpte_try_fold.__func__ is type(arch).policy_try_fold
    arch.fold_policy = None
    assert arch.contpte_try_fold.__func__ is kernel_fold
    assert "policy" not in inspect.getsource(Arch.contpte_try_fold_v6_9)


@pytest.mark.parametrize("module", KERNEL_SHAPED)
def test_kernel_shaped_modules_never_ask_the_profile(module):
    assert not re.search(r"\bprofile\.", (ARCH / module).read_text())


def test_every_recorded_version_gets_the_fast_compiled_wrapper():
    """arch_call compiles a positional wrapper only for plain parameters; a
    version it could not compile falls back to the *args wrapper, several
    times slower per call (the pgtable.h aliases once did: baseline ran 10%
    slower)."""
    for p in PROFILES.values():
        cls = compose(Arch, p)
        for name in cls.LAYER:
            fn = getattr(cls, name)
            if hasattr(fn, "kernel_name"):
                assert fn.__code__.co_filename.startswith("<wrapper of"), (p.name, name)


# Rows whose functions used to test the profile inside their bodies (issue #15
# item 3), with every function each row changes.
ROW_FUNCTIONS = {
    "set_ptes_single_barrier": ("raw_set_ptes",),
    "local_access_flush": ("raw_ptep_set_access_flags", "local_flush_tlb_contpte",
                           "contpte_ptep_set_access_flags", "pmdp_set_access_flags"),
    "tlbi_repeat_at_sync": ("tlbi", "tlbi_sync_s1ish"),
    "tlb_limit": ("flush_tlb_range_limit_excess",),
    "tlbf_flags_api": ("flush_tlb_page", "flush_tlb_range_fallback"),
    "tlbbatch_range": ("arch_tlbbatch_add_pending",),
    "flush_nosync_split": ("flush_tlb_range_fallback", "flush_tlb_range_complete"),
    "flush_notifier_fixed": ("flush_tlb_range_op",),
}


@pytest.mark.parametrize("field", sorted(ROW_FUNCTIONS))
def test_a_rows_versions_are_chosen_once_when_the_layer_is_composed(field):
    """The profile before a row and the first one with it get different
    function objects, installed on their composed classes: the choice is made
    at composition, and no version asks the profile when it runs. Flipping the
    row alone on the newer profile gives the older version back."""
    _, value, first, _, _ = first_row(field)
    order = list(PROFILES)
    after = PROFILES[first]
    before = PROFILES[order[order.index(first) - 1]]
    assert getattr(before, field) != value and getattr(after, field) == value
    flipped = replace(after, **{field: getattr(before, field)})
    old_cls, new_cls, flipped_cls = (compose(Arch, p) for p in (before, after, flipped))
    for name in ROW_FUNCTIONS[field]:
        old, new = getattr(old_cls, name), getattr(new_cls, name)
        assert old is not new, name
        assert old is getattr(Arch, old_cls.LAYER[name].attr)
        assert new is getattr(Arch, new_cls.LAYER[name].attr)
        assert field in (new_cls.LAYER[name].since, old_cls.LAYER[name].until), name
        assert getattr(flipped_cls, name) is old, name
        for fn in (old, new):
            assert not re.search(r"\bprofile\.", inspect.getsource(fn)), fn.__name__


def test_flipping_flush_nosync_split_alone_on_v7_3_keeps_the_tlbf_fallback():
    """The two rows in __flush_tlb_range's pieces flip on their own: v7.3
    without d9d8dc2bd3fb keeps __do_flush_tlb_range()'s limit check and early
    return (no DSB after flush_tlb_mm()) and puts the DSB ISH back before the
    notifier."""
    p = replace(PROFILES["v7.3"], flush_nosync_split=False)
    cls = compose(Arch, p)
    assert cls.LAYER["flush_tlb_range_fallback"].attr == "flush_tlb_range_fallback_v7_3"
    assert cls.LAYER["flush_tlb_range_complete"].attr == "flush_tlb_range_complete_baseline"
    sim = Simulator(4096, p)
    base = 1 << 30
    sim.arch.flush_tlb_range(sim.mm, base, base + 4 * 4096, 4096, True, 3)
    kinds = [e.kind for e in sim.events if e.kind in ("dsb", "mmu_notifier")]
    assert kinds == ["dsb", "dsb", "mmu_notifier"]


# the profile fields of the arch layer: KernelProfile declares them first, up to pa_bits
_NAMES = [f.name for f in fields(KernelProfile)]
ARCH_ROWS = _NAMES[_NAMES.index("contpte"):_NAMES.index("pa_bits")]


def test_core_mm_reads_no_arch_row():
    """Core mm calls the arch layer's functions; which release of arm64 they
    are is chosen when the layer is composed, never asked in core mm."""
    mm_dir = ARCH.parent / "mm"
    pattern = re.compile(r"\bprofile\.(" + "|".join(ARCH_ROWS) + r")\b")
    for path in sorted(mm_dir.glob("*.py")):
        assert not pattern.search(path.read_text()), path.name
