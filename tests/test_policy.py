# SPDX-License-Identifier: GPL-2.0-only
"""Fold policies: built-ins, a user policy from a file, misbehaving policies."""

from pathlib import Path

import pytest

from engine import Simulator
from engine.policy import GuardedPolicy, PolicyError, PolicyTimeout, load_policy
from engine.pte import PAGE_SHARED, PTE_CONT

BASE = 0x7F00_0000_0000
POL = Path(__file__).resolve().parent / "data" / "policies"


def fill(sim, order):
    sim.add_folio(16, 16)
    for i in order:
        sim.ptep.set_ptes(BASE + i * 4096, sim.pte.pfn_pte(16 + i, PAGE_SHARED), 1)
    return sim.counters()["folds"]


@pytest.mark.parametrize("policy, ascending, descending", [
    ("mainline", 1, 0),  # the kernel only checks on the last entry
    ("never", 0, 0),
    ("any-entry", 1, 1),  # checks on every write: the reversed fill folds on entry 0
])
def test_builtin_policies(policy, ascending, descending):
    for order, expected in ((range(16), ascending), (reversed(range(16)), descending)):
        sim = Simulator()
        sim.arch.fold_policy = load_policy(policy)
        assert fill(sim, order) == expected


def test_user_policy_from_a_file_folds_on_the_first_entry():
    pol = load_policy(f"{POL / 'first_entry.py'}:FirstEntry")
    assert isinstance(pol, GuardedPolicy) and pol.name == "first-entry"
    sim = Simulator()
    sim.arch.fold_policy = pol
    assert fill(sim, reversed(range(16))) == 1
    assert sim.raw(BASE) & PTE_CONT


@pytest.mark.parametrize("spec, msg", [
    ("nope", "unknown policy"),
    ("missing.py:X", "does not exist"),
    (f"{POL / 'first_entry.py'}:Missing", "has no class"),
])
def test_bad_policy_specs(spec, msg):
    with pytest.raises(PolicyError, match=msg):
        load_policy(spec)


@pytest.mark.parametrize("cls, exc, msg", [
    ("Raises", PolicyError, "raised KeyError"),
    ("Nonsense", PolicyError, "returned 'yes please'"),
    ("Runaway", PolicyTimeout, "ran for more than"),
])
def test_misbehaving_user_policies_become_one_clear_error(cls, exc, msg):
    pol = load_policy(f"{POL / 'bad.py'}:{cls}")
    pol.time_limit = 0.3
    sim = Simulator()
    sim.arch.fold_policy = pol
    sim.add_folio(16, 16)
    with pytest.raises(exc, match=msg):
        sim.ptep.set_ptes(BASE, sim.pte.pfn_pte(16, PAGE_SHARED), 1)
