# SPDX-License-Identifier: GPL-2.0-only
"""Core-mm throughput: fault-in, fork and munmap of 1 GiB of anonymous memory.

    python bench/mm_bench.py [--size 1G] [--mode record|count] [--repeat 3] [--json]

For each folio layout -- order-0, 64K mTHP, PTE-mapped 2M THP -- on the 4K
granule (kernel v7.0, neoverse-n1) it times three ops through the machine:
fault-in (``touch write``; for THP also the PMD split that PTE-maps it),
``fork`` and ``munmap`` of the parent's copy, and reports simulated PTE
updates per second (descriptor writes, ``pte_writes``, per second of wall
time). In the same run it times a bare floor: a plain Python loop doing one
page-table store and one event-record append per PTE. Targets (not tests):
>= 1M updates/s on batched paths, >= 300K/s on per-PTE paths, <= 4x the floor.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from array import array

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from engine.machine import Machine, MachineConfig  # noqa: E402
from engine.ops import Op  # noqa: E402
from engine.scenario import parse_size  # noqa: E402

LAYOUTS = {
    "order-0": {"thp": "never", "mthp": {}},
    "64K mTHP": {"thp": "never", "mthp": {"64K": "always"}},
    "PTE-mapped 2M": {"thp": "never", "mthp": {"2M": "always"}},
}


def floor(n: int) -> float:
    """Seconds per PTE of the bare minimum: one store, one event append."""
    table = array("Q", bytes(8 * 512))
    events: list[tuple] = []
    append = events.append
    v = 0x00F8000080000F43
    t0 = time.perf_counter()
    addr = 0x7F0000000000
    for i in range(n):
        j = i & 511
        old = table[j]
        table[j] = v
        append(("pte_write", addr, old, v, "store"))
        addr += 4096
        v += 4096
    return (time.perf_counter() - t0) / n


def measure(name: str, size: int, record: bool) -> dict:
    cfg = MachineConfig(kernel="v7.0", cpu="neoverse-n1", memory=max(4 << 30, 3 * size),
                        check="off", record=record, **LAYOUTS[name])
    m = Machine(cfg)
    m.apply(Op("mmap", {"name": "buf", "size": size}))
    phases = [("fault-in", [Op("touch", {"name": "buf", "access": "write"})])]
    if name == "PTE-mapped 2M":
        phases[0][1].append(Op("split", {"name": "buf", "order": 0, "pmd": True}))
    phases.append(("fork", [Op("fork", {"child": "child"})]))
    phases.append(("munmap", [Op("munmap", {"name": "buf"})]))
    out = {}
    for phase, ops in phases:
        m.log.clear()
        writes = 0
        t0 = time.perf_counter()
        for op in ops:
            writes += m.apply(op)["pte_writes"]
        dt = time.perf_counter() - t0
        out[phase] = {"seconds": round(dt, 3), "pte_updates": writes,
                      "updates_per_s": round(writes / dt) if dt else 0}
    m.log.clear()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", default="1G", help="anonymous mapping size (default 1G)")
    ap.add_argument("--mode", choices=("record", "count"), default="record",
                    help="EventLog mode: keep every event (default) or only count them")
    ap.add_argument("--repeat", type=int, default=3, help="best of N runs (default 3)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    size = parse_size(args.size)
    per_pte = min(floor(1 << 20) for _ in range(args.repeat))
    results = {"size": size, "mode": args.mode, "floor_updates_per_s": round(1 / per_pte),
               "layouts": {}}
    for name in LAYOUTS:
        runs = [measure(name, size, args.mode == "record") for _ in range(args.repeat)]
        results["layouts"][name] = {phase: min((r[phase] for r in runs), key=lambda x: x["seconds"])
                                    for phase in runs[0]}
    if args.json:
        print(json.dumps(results))
        return 0
    print(f"{args.size} of anonymous memory, 4K granule, v7.0, neoverse-n1, {args.mode} mode")
    print(f"floor (one store + one event append per PTE): {results['floor_updates_per_s']:,} /s")
    print(f"{'layout':<16}{'phase':<10}{'seconds':>9}{'PTE updates':>13}{'updates/s':>12}{'x floor':>9}")
    for name, phases in results["layouts"].items():
        for phase, r in phases.items():
            ratio = results["floor_updates_per_s"] / r["updates_per_s"] if r["updates_per_s"] else 0
            print(f"{name:<16}{phase:<10}{r['seconds']:>9.3f}{r['pte_updates']:>13,}"
                  f"{r['updates_per_s']:>12,}{ratio:>9.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
