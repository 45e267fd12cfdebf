# SPDX-License-Identifier: GPL-2.0-only
"""Cycle estimates from counters and CPU weights (engine/cycles.py)."""

from collections import Counter

import pytest

from engine.arch.profiles import PROFILES
from engine.cycles import cycles
from engine.hw.cpus import CPUS

N1 = CPUS["neoverse-n1"]


def test_weights_times_counts():
    c = Counter({"pte_writes": 10, "dsb_ish": 2, "tlb_misses": 3, "mm_zero_page": 1, "unknown": 99})
    w = N1.weights
    expected = 10 * w["pte_writes"] + 2 * w["dsb_ish"] + 3 * w["tlb_misses"] + w["mm_zero_page"]
    assert cycles(c, PROFILES["v7.0"], N1) == pytest.approx(expected)


# out-of-line calls among the counters below, per profile:
#   seed-basic: set_ptes 3, contpte_* 2, contpte_try_unfold from set_ptes(1) 2,
#               ptep_get_and_clear 1, ptep_set_wrprotect 1
#   seed-batch: set_ptes 3, contpte_* 2, wrprotect_ptes 1, contpte_try_unfold from
#               set_ptes(1) 2, ptep_get_and_clear 1, clear_full_ptes(1) 1
#   seed-inline, v7.0: contpte_* 2
@pytest.mark.parametrize("kernel,calls", [("seed-basic", 9), ("seed-batch", 10), ("seed-inline", 2),
                                          ("v7.0", 2), ("baseline", 0)])
def test_out_of_line_calls(kernel, calls):
    """contpte_* functions are always calls; before __always_inline (seed-basic,
    seed-batch) so are set_ptes(), the arm64 wrprotect_ptes() and every
    contpte_try_unfold() (set_ptes(1), clear_full_ptes(1), ptep_get_and_clear(),
    pte_clear(), and ptep_set_wrprotect() before the batch APIs); small wrappers
    such as ptep_get() are inlined."""
    c = Counter({"call:set_ptes": 3, "call:contpte_set_ptes": 1, "call:__contpte_try_fold": 1,
                 "call:do_anonymous_page": 7, "call:ptep_get": 50, "set_ptes_1": 2,
                 "call:ptep_get_and_clear": 1, "call:ptep_set_wrprotect": 1, "clear_full_ptes_1": 1,
                 "call:wrprotect_ptes": 1})
    w = N1.weights
    extra = w["call:__contpte_try_fold"]
    if PROFILES[kernel].auto_fold:
        extra += 2 * w["contpte_check"]
    if kernel == "baseline":
        c = Counter({"call:set_ptes": 3, "set_ptes_1": 3})
        extra = 0
    assert cycles(c, PROFILES[kernel], N1) == pytest.approx(calls * w["call_outofline"] + extra)


def test_contpte_fast_path_check_only_with_auto_fold():
    c = Counter({"set_ptes_1": 100})
    assert cycles(c, PROFILES["v6.9"], N1) == pytest.approx(100 * N1.weights["contpte_check"])
    assert cycles(c, PROFILES["seed-inline"], N1) == 0
    assert cycles(c, PROFILES["baseline"], N1) == 0
    # before __always_inline, set_ptes(1)'s contpte_try_unfold() is a call
    assert cycles(c, PROFILES["seed-batch"], N1) == pytest.approx(100 * N1.weights["call_outofline"])


def test_body_weights_of_arch_functions():
    c = Counter({"call:contpte_ptep_get": 4})
    assert cycles(c, PROFILES["v6.9"], N1) == pytest.approx(
        4 * (N1.weights["call:contpte_ptep_get"] + N1.weights["call_outofline"]))


def test_a_broadcast_heavy_op_costs_more_on_a_big_system():
    c = Counter({"tlbi_vale1is": 16, "dsb_ish": 1})
    assert cycles(c, PROFILES["v7.0"], N1) > cycles(c, PROFILES["v7.0"], CPUS["apple-m2"])
