# SPDX-License-Identifier: GPL-2.0-only
"""Memory: 16 GiB mapped on the 4K granule (4M PTEs) in count mode.

    python -m bench.memory_bench [--size 16G] [--json]

Runs in a fresh child process (so nothing measured before pollutes it): a
core-mm machine with 17 GiB of physical memory maps 16 GiB of 64K mTHP
anonymous memory and writes every page (4M PTEs, 256K folios), then reports
the process's resident set size (psutil) -- the page tables, per-page
physical-memory metadata, the TLB and the interpreter. Target (docs/benchmarks.md):
<= 300 MB.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psutil

from bench.cases import Case, print_cases  # noqa: E402
from engine.expressions import parse_size
from engine.ops import Op
from engine.scenario_machine import Machine, MachineConfig


def child(size: int) -> dict:
    t0 = time.process_time()
    m = Machine(MachineConfig(memory=size + (1 << 30), record=False, check="end", thp="never",
                              mthp={"64K": "always"}))
    m.apply(Op("mmap", {"name": "buf", "size": size}))
    m.apply(Op("touch", {"name": "buf", "access": "write"}))
    m.log.clear()
    ptes = sum(sum(1 for v in t if v) for p in m.process_list() for t in p.mm.pt.tables.values())
    rss = psutil.Process().memory_info().rss
    return {"size": size, "ptes": ptes, "rss_mb": round(rss / 1e6, 1),
            "cpu_s": round(time.process_time() - t0, 1)}


def run(size: int = 16 << 30) -> tuple[list[Case], dict]:
    out = subprocess.run([sys.executable, "-m", "bench.memory_bench", "--child", "--size", str(size)],
                         capture_output=True, text=True, cwd=str(Path(__file__).resolve().parents[1]),
                         check=False)
    if out.returncode:
        raise RuntimeError(f"memory bench child failed: {out.stderr.strip().splitlines()[-1:]}")
    info = json.loads(out.stdout)
    rss = info["rss_mb"]
    gib = size / (1 << 30)
    name = f"memory: {gib:g} GiB mapped on 4K ({info['ptes'] / 1e6:.1f}M PTEs), count mode, RSS"
    note = "" if rss <= 300 else f"{rss - 300:.0f} MB over"
    return [Case(name, rss, "MB", "<= 300 MB", rss <= 300, note)], info


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", default="16G")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    size = parse_size(a.size)
    if a.child:
        print(json.dumps(child(size)))
        return 0
    cases, info = run(size)
    print_cases(cases, info, a.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
