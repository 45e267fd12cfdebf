# SPDX-License-Identifier: GPL-2.0-only
"""Cycle estimates from counters and CPU weights (engine/costs.py)."""

from collections import Counter

import pytest

from engine.arch.profiles import PROFILES
from engine.costs import cycles
from engine.hw.cpus import CPUS

N1 = CPUS["neoverse-n1"]


def test_weights_times_counts():
    c = Counter({"pte_writes": 10, "dsb_ish": 2, "tlb_misses": 3, "mm_zero_page": 1, "unknown": 99})
    w = N1.weights
    expected = 10 * w["pte_writes"] + 2 * w["dsb_ish"] + 3 * w["tlb_misses"] + w["mm_zero_page"]
    assert cycles(c, PROFILES["v7.0"], N1) == pytest.approx(expected)


@pytest.mark.parametrize("kernel,calls", [("seed-basic", 5), ("seed-batch", 5), ("seed-inline", 2),
                                          ("v7.0", 2), ("baseline", 0)])
def test_out_of_line_calls(kernel, calls):
    """Public wrappers are calls unless __always_inline (seed-inline on);
    contpte_* functions are always out of line."""
    c = Counter({"call:set_ptes": 3, "call:contpte_set_ptes": 1, "call:__contpte_try_fold": 1,
                 "call:do_anonymous_page": 7})
    if kernel == "baseline":
        c = Counter({"call:set_ptes": 3})
    got = cycles(c, PROFILES[kernel], N1)
    assert got == pytest.approx(calls * N1.weights["call_outofline"])


def test_contpte_fast_path_check_only_with_auto_fold():
    c = Counter({"set_ptes_1": 100})
    assert cycles(c, PROFILES["v6.9"], N1) == pytest.approx(100 * N1.weights["contpte_check"])
    assert cycles(c, PROFILES["seed-batch"], N1) == 0
    assert cycles(c, PROFILES["baseline"], N1) == 0


def test_a_broadcast_heavy_op_costs_more_on_a_big_system():
    c = Counter({"tlbi_vale1is": 16, "dsb_ish": 1})
    assert cycles(c, PROFILES["v7.0"], N1) > cycles(c, PROFILES["v7.0"], CPUS["apple-m2"])
