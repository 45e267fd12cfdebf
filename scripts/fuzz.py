#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Long fuzz campaigns (the test suite runs short, bounded ones).

    python scripts/fuzz.py scenarios [--cases 100000] [--seed 7] [--cli-every 50]
    python scripts/fuzz.py tui [--events 20000] [--round 2000] [--seed 7] [--target demo,kbuild]
    python scripts/fuzz.py hostile [--cases 2000] [--seed 7]

``scenarios``: seeded mutations of the built-in scenarios, each parsed and run
op by op under an op budget (tests/scenario_fuzz.py); every ``--cli-every``-th
case that finishes also goes through ``ptlab run``. ``tui``: random keys,
clicks and resizes through Textual's pilot, then the session's invariants
(tests/tui_monkey.py). ``hostile``: crafted snapshots with valid CRCs (random
lies in op records, counters, digests, header and configuration, checkpoint
nodes, forged PTEs, and the named cases of tests/hostile_samples.py), each
through a random replay/--verify/show/diff command line, which must end in
seconds with exit 0, 1 or 2, one line, no raw escape, strict JSON. A contract
violation is printed and its input kept in ``--keep`` (default: fuzz-failures/);
the exit status is 1 if there was any.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]


class _Capsys:
    """Just enough of pytest's capsys for scenario_fuzz.check_cli."""

    def __init__(self) -> None:
        self.out, self.err = io.StringIO(), io.StringIO()

    def readouterr(self):  # type: ignore[no-untyped-def]
        o, e = self.out.getvalue(), self.err.getvalue()
        self.out.seek(0)
        self.out.truncate()
        self.err.seek(0)
        self.err.truncate()
        return type("R", (), {"out": o, "err": e})


def scenarios(args: argparse.Namespace) -> int:
    from scenario_fuzz import FILE, ContractViolation, Stats, check_cli, corpus, mutate, run_case

    from engine.scenario import parse

    keep = Path(args.keep)
    c = corpus()
    names = sorted(c)
    texts = [c[n] for n in names]
    rnd = random.Random(args.seed)
    stats = Stats()
    failures = cli = 0
    slowest = (0.0, -1)
    t0 = time.perf_counter()
    cap = _Capsys()
    for i in range(args.cases):
        text, muts = mutate(c[rnd.choice(names)], rnd, texts)
        t = time.perf_counter()
        try:
            out = run_case(text)
            complete = out.kind == "error" or (out.kind == "ran" and out.ops == len(parse(text, FILE).ops))
            if args.cli_every and i % args.cli_every == 0 and complete and out.memory is None:
                keep.mkdir(parents=True, exist_ok=True)
                with contextlib.redirect_stdout(cap.out), contextlib.redirect_stderr(cap.err):
                    check_cli(text, keep, out, cap)
                cli += 1
            stats.add(out, muts)
        except ContractViolation as e:
            failures += 1
            keep.mkdir(parents=True, exist_ok=True)
            path = keep / f"scenario-{args.seed}-{i}.pts"
            path.write_text(text)
            print(f"case {i} ({', '.join(muts)}): {e} -> {path}", flush=True)
        slowest = max(slowest, (time.perf_counter() - t, i))
        if args.progress and i and i % args.progress == 0:
            print(f"  {i} cases, {time.perf_counter() - t0:.0f} s, {dict(stats.outcomes)}", flush=True)
    dt = time.perf_counter() - t0
    print(f"scenario fuzz: {args.cases} cases (seed {args.seed}) in {dt:.1f} s, {stats.ops} ops run, "
          f"{dict(stats.outcomes)}, {cli} through ptlab run, slowest case {slowest[1]} "
          f"({slowest[0]:.2f} s), {failures} contract violations")
    print("mutations: " + ", ".join(f"{k} {v}" for k, v in sorted(stats.mutations.items())))
    return 1 if failures else 0


def tui(args: argparse.Namespace) -> int:
    """Storms of ``--round`` events each (the session is checked after each),
    cycling through the targets, until ``--events`` events in all."""
    import asyncio
    from collections import Counter

    from tui_monkey import monkey

    targets = args.target.split(",")
    keep = Path(args.keep)
    keep.mkdir(parents=True, exist_ok=True)
    os.chdir(keep)  # Ctrl-S and the save dialog write to the current directory
    t0 = time.perf_counter()
    done, rounds, failures = 0, 0, 0
    events: Counter = Counter()
    while done < args.events:
        n = min(args.round, args.events - done)
        target, seed = targets[rounds % len(targets)], args.seed + rounds
        try:
            res = asyncio.run(monkey(target, n, seed, size_changes=True))
        except Exception as e:  # noqa: BLE001 - an exception the app let escape is a finding too
            failures += 1
            print(f"  round {rounds} ({target}, seed {seed}): FAILED: {type(e).__name__}: {e}", flush=True)
        else:
            events.update(res.events)
            print(f"  round {rounds} (seed {seed}) {res.summary()}", flush=True)
        done += n
        rounds += 1
    ev = ", ".join(f"{n} {k}" for k, n in sorted(events.items()))
    print(f"tui monkey: {done} events in {rounds} storms on {args.target} (seeds {args.seed}.."
          f"{args.seed + rounds - 1}) in {time.perf_counter() - t0:.0f} s: {ev}; {failures} failures")
    return 1 if failures else 0


def hostile(args: argparse.Namespace) -> int:
    import tempfile

    import hostile_samples as hs

    with tempfile.TemporaryDirectory() as d:
        base = hs.base_file(Path(d) / "base.ptsnap")

        def progress(i: int, counts) -> None:  # type: ignore[no-untyped-def]
            if args.progress and i % args.progress == 0:
                print(f"  {i} cases: {dict(sorted(counts.items()))}", flush=True)

        r = hs.campaign(base, d, args.cases, args.seed, keep=args.keep, progress=progress)
    for f in r["failures"]:
        print("FAIL", f)
    print(f"hostile fuzz: {r['cases']} random hostile snapshots (seed {r['seed']}) in {r['seconds']:.0f} s "
          f"(slowest {r['slowest']:.1f} s): " + ", ".join(f"{v} {k}" for k, v in sorted(r["counts"].items())))
    return 1 if r["failures"] else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="what", required=True)
    p = sub.add_parser("scenarios", help="seeded mutation campaign over the scenario language")
    p.add_argument("--cases", type=int, default=20000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--cli-every", type=int, default=50,
                   help="check every N-th case through ptlab run (0: never)")
    p.add_argument("--progress", type=int, default=5000, help="print progress every N cases (0: never)")
    p.add_argument("--keep", default="fuzz-failures", help="directory for failing inputs")
    p.set_defaults(fn=scenarios)
    p = sub.add_parser("tui", help="monkey-test the TUI")
    p.add_argument("--events", type=int, default=20000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--round", type=int, default=2000,
                   help="events per storm (the session is checked after each)")
    p.add_argument("--target", default="demo,kbuild",
                   help="scenarios or files, comma-separated, taken in turn")
    p.add_argument("--keep", default="fuzz-tui", help="scratch directory (the monkey saves snapshots there)")
    p.set_defaults(fn=tui)
    p = sub.add_parser("hostile", help="crafted hostile snapshots through the ptlab commands")
    p.add_argument("--cases", type=int, default=2000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--progress", type=int, default=250, help="print progress every N cases (0: never)")
    p.add_argument("--keep", default="fuzz-hostile", help="directory for failing inputs")
    p.set_defaults(fn=hostile)
    args = ap.parse_args()
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
