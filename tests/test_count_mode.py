# SPDX-License-Identifier: GPL-2.0-only
"""Count mode gives the counters record mode gives, op by op.

Count mode keeps counters instead of event tuples (engine.events.CountLog:
a counter per kind, counted by hand for the kinds with details, bulk forms
on the wide paths); record mode counts every event tuple with count_events.
They must agree on every counter of every op, for every path the scenarios
drive, on every kernel profile family.
"""

from __future__ import annotations

import pytest

from engine.scenario import builtin, parse
from engine.scenario_machine import Machine, MachineConfig

ANON = """
mmap buf 4M
touch buf write
{split}fork child
touch buf +1M 256K write
mprotect buf +2M 1M r
mprotect buf +2M 1M rw
madvise buf +3M 512K dontneed
reclaim buf
switch child
touch buf +64K 64K write
exit
munmap buf
"""

LAYOUTS = {"order0": {"thp": "never"}, "64K": {"thp": "never", "mthp": {"64K": "always"}},
           "2M": {"thp": "never", "mthp": {"2M": "always"}}}


def _compare(ops, make) -> None:
    rec = make(True)
    cnt = make(False)
    for i, op in enumerate(ops):
        a = {k: v for k, v in rec.apply(op).items() if v}
        del rec.log.buf[:]
        b = {k: v for k, v in cnt.apply(op).items() if v}
        assert a == b, f"op {i + 1} ({op}): " + str(
            {k: (a.get(k), b.get(k)) for k in set(a) | set(b) if a.get(k) != b.get(k)})
    assert rec.digest() == cnt.digest()


@pytest.mark.parametrize("kernel", ["baseline", "seed-basic", "seed-batch", "seed-fold", "v6.10", "v7.0"])
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_anon_paths(layout: str, kernel: str) -> None:
    ops = list(parse(ANON.replace("{split}", "split buf pmd\n" if layout == "2M" else "")).ops)
    for cpu in ("neoverse-n1", "apple-m2"):
        _compare(ops, lambda rec, cpu=cpu: Machine(MachineConfig(
            kernel=kernel, cpu=cpu, memory=64 << 20, record=rec, **LAYOUTS[layout])))


@pytest.mark.parametrize("name", ["demo", "kbuild", "cow-mthp", "check-04-fork-write-reuse",
                                  "check-09-madvise-free-cold", "check-11-migrate-64k",
                                  "check-12-numa-hint", "check-13-file-write-faults",
                                  "check-14-lockless-race", "check-15-smmu-no-httu"])
def test_builtin_scenarios(name: str) -> None:
    sc = builtin(name)
    for kernel in ("seed-basic", "v6.9", "v7.0"):
        _compare(list(sc.ops), lambda rec, kernel=kernel: Machine(sc.config(record=rec, kernel=kernel)))
