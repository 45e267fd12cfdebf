# SPDX-License-Identifier: GPL-2.0-only
"""ptlab bench [WHAT]: speed and memory targets, the seed's tables, the use-case table."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from tui.errors import UserError

if TYPE_CHECKING:
    from bench.cases import Case

NAME = "bench"
HELP = "benchmarks: throughput, seek, save, TUI latency and memory targets; the seed's tables"
DESCRIPTION = (
    "Without WHAT (or with 'all'): every speed target (docs/benchmarks.md) -- mm (fault-in, fork, munmap of "
    "1 GiB, against a floor measured in the same run), session (seek, save and reopen a "
    "one-million-op session; a step back over each op of the seed's --size scenarios against "
    "the step forward), tui (keypress -> repaint with 1 GiB mapped), memory (16 GiB "
    "mapped) -- as a table, or {\"cases\": [...]} with --json. 'seed' prints the seed series' "
    "micro-benchmark tables as the cost model sees them ({\"rows\": [...]}); 'usecase' the "
    "kernel-compile mix's page faults and TLB misses beside the seed's kern/user time. "
    "Progress goes to stderr. Times are CPU seconds of the process where the host is shared.")
WHATS = ("all", "mm", "session", "tui", "memory", "seed", "usecase")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("what", nargs="?", default="all", metavar="WHAT",
                   help="all (default), mm, session, tui, memory, seed or usecase")
    p.add_argument("--size", help="mapping size for mm and seed (default 1G; seed scales linearly)")
    p.add_argument("--ops", type=int, default=1_000_000, help="ops in the session case (default 1000000)")
    p.add_argument("--jobs", type=int, default=2, help="worker processes for 'seed' (default 2)")
    p.add_argument("--repeat", type=int, default=3,
                   help="mm: runs per case, each between two floor samples; medians are reported "
                        "with their spread (default 3)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _size(text: str | None, default: str) -> tuple[str, int]:
    from engine.errors import ScenarioError
    from engine.expressions import parse_size

    t = text or default
    try:
        v = parse_size(t)
    except ScenarioError as e:
        raise UserError(f"bench: --size: {e}") from None
    if v < 4 << 20 or v & ((2 << 20) - 1):
        raise UserError(f"bench: --size {t}: use a multiple of 2M, at least 4M")
    return t, v


def run(args: argparse.Namespace) -> int:
    what = args.what
    if what not in WHATS:
        raise UserError(f"bench: unknown benchmark {what!r} (use {', '.join(WHATS)})")
    if args.ops < 1000:
        raise UserError("bench: --ops must be at least 1000")
    if args.jobs < 1:
        raise UserError("bench: --jobs must be at least 1")
    if not 1 <= args.repeat <= 99:
        raise UserError("bench: --repeat must be 1 to 99")
    from bench.cases import progress_done

    if what == "seed":
        from bench import seed

        size_text, _ = _size(args.size, "1G")
        rows = seed.run(size_text, args.jobs)
        progress_done()
        if args.json:
            print(json.dumps({"size": size_text, "rows": rows}))
        else:
            print(f"seed micro-benchmarks, {size_text} mappings: estimated cost of the fork/munmap op "
                  "relative to baseline, beside the seed's mean and stdev\n")
            print(seed.table(rows))
        return 0
    if what == "usecase":
        from bench import usecase

        rows = usecase.run()
        progress_done()
        if args.json:
            print(json.dumps({"rows": rows}))
        else:
            print(usecase.table(rows))
        return 0
    _, size = _size(args.size, "1G")
    cases: list[Case] = []
    info: dict[str, Any] = {}
    if what in ("all", "mm"):
        from bench import mm_bench

        got, info["mm"] = mm_bench.run(size, repeat=args.repeat)
        cases += got
    if what in ("all", "session"):
        from bench import session_bench

        got, info["session"] = session_bench.run(args.ops)
        cases += got
        got, info["step_back"] = session_bench.step_back(size)
        cases += got
    if what in ("all", "tui"):
        from bench import tui_bench

        got, info["tui"] = tui_bench.run()
        cases += got
    if what in ("all", "memory"):
        from bench import memory_bench

        got, info["memory"] = memory_bench.run()
        cases += got
    progress_done()
    if args.json:
        print(json.dumps({"cases": [c.as_dict() for c in cases], "info": info}))
        return 0
    print(f"{'case':<58} {'value':>12} {'unit':<8} {'target':<22} result")
    for c in cases:
        print(c.line())
    missed = [c for c in cases if c.ok is False]
    print(f"\n{sum(1 for c in cases if c.ok)} targets met, {len(missed)} missed"
          + (": see the notes above and docs/benchmarks.md" if missed else ""))
    sys.stdout.flush()
    return 0
