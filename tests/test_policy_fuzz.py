# SPDX-License-Identifier: GPL-2.0-only
"""Random user policies (issue #9, item 5), seeded: each answers should_try_fold
with a random mix of True, False, None, numbers, strings, objects whose
__bool__ raises, and exceptions; some also have a scan() (with a random
scan_interval) that yields good candidates, junk tuples, foreign mms or raises.

Every run either ends, or stops with one SessionError line that names the op
and the policy; either way the session is at an op boundary and the page
tables satisfy every invariant (a policy only says "try": the fold code still
checks), and stepping back to op 0 and forward again does not raise anything
but that one error.
"""

from __future__ import annotations

import os
import random

import pytest

from engine.policy import GuardedPolicy, PolicyError
from engine.scenario import builtin
from engine.scenario_machine import Machine
from engine.session import Position, Session, SessionError

CASES = int(os.environ.get("PTLAB_FUZZ_POLICY_CASES", 120))
SEED = int(os.environ.get("PTLAB_FUZZ_SEED", 20250131))


class _BadBool:
    def __bool__(self):
        raise ValueError("no truth")


def _answer(rnd: random.Random, machine=None):  # type: ignore[no-untyped-def]
    r = rnd.random()
    if r < 0.45:
        return rnd.random() < 0.5
    if r < 0.6:
        return rnd.choice([None, 0, 1, 2, -1, 0.5, float("nan"), "", "yes", b"x", [], [0], {}, ()])
    if r < 0.7:
        return _BadBool()
    raise rnd.choice([KeyError("k"), ValueError("v"), ZeroDivisionError("z"), RuntimeError("r"),
                      RecursionError("deep"), SystemExit(3), MemoryError()])  # (KeyboardInterrupt is Ctrl-C)


class RandomPolicy:
    def __init__(self, seed: int, fail_rate: float, scans: bool):
        self.rnd = random.Random(seed)
        self.fail_rate = fail_rate
        self.name = f"random-{seed}"
        if scans:
            self.scan_interval = self.rnd.choice([1, 2, 5, 0, -1, "3", None, 2**40])

    def should_try_fold(self, arch, mm, addr, pte):  # type: ignore[no-untyped-def]
        if self.rnd.random() > self.fail_rate:
            return self.rnd.random() < 0.5
        return _answer(self.rnd)

    def scan(self, machine):  # type: ignore[no-untyped-def]
        procs = list(machine.process_list())
        for _ in range(self.rnd.randrange(0, 6)):
            r = self.rnd.random()
            if r < 0.5 and procs:
                p = self.rnd.choice(procs)
                yield p.mm, self.rnd.randrange(0, 1 << 48) & ~0xFFF
            elif r < 0.8 and procs:
                yield self.rnd.choice(procs).mm, self.rnd.choice([-1, 1, 1 << 60, "0x1000", None])
            elif r < 0.9:
                yield self.rnd.choice([(), (1,), (None, 0), "mm", 7, (object(), 0x1000, 3)])
            else:
                raise ValueError("scan failed")


def test_random_policies(report_line):
    rnd = random.Random(SEED)
    scn = builtin("demo")
    outcomes = {"ended": 0, "stopped": 0, "refused": 0}
    for case in range(CASES):
        seed, fail_rate = rnd.randrange(1 << 30), rnd.choice([0.0, 0.001, 0.01, 0.1])
        scans = rnd.random() < 0.4

        def make(seed=seed, fail_rate=fail_rate, scans=scans):  # type: ignore[no-untyped-def]
            pol = GuardedPolicy(RandomPolicy(seed, fail_rate, scans), time_limit=2.0)
            return Machine(scn.config(record=False, check="end", memory=256 << 20, policy=pol))

        where = f"case {case} (seed {seed}, fail rate {fail_rate}, scan {scans})"
        try:
            s = Session(make, scn.ops, checkpoint_ops=8)
        except PolicyError as e:  # a bad attribute (scan_interval) is refused when the policy is loaded
            assert "\n" not in str(e) and str(e).startswith("policy random-"), (where, str(e))
            outcomes["refused"] += 1
            continue
        try:
            s.run()
            outcomes["ended"] += 1
        except SessionError as e:
            outcomes["stopped"] += 1
            k = s.error[0]
            msg = str(e)
            assert "\n" not in msg and msg.startswith(f"op {k + 1} (") and "policy random-" in msg, \
                (where, msg)
            assert s.position == Position(k), where
        assert s.machine.check_invariants() == [], where
        s.seek(Position(0))
        assert s.machine.check_invariants() == [], where
        try:
            s.seek(Position(s.n_ops))
        except SessionError as e:
            assert "\n" not in str(e) and "policy random-" in str(e), (where, str(e))
    report_line(f"policy fuzz: {CASES} random user policies (seed {SEED}) on demo: {outcomes['ended']} ran "
                f"to the end, {outcomes['stopped']} stopped with one line naming the op, "
                f"{outcomes['refused']} refused at load; invariants held in all, 0 failures")


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__])
