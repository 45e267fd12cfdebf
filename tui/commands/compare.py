# SPDX-License-Identifier: GPL-2.0-only
"""ptlab compare TARGET --kernel A --kernel B | --policy A --policy B | --cpu A --cpu B
                       | --granule A --granule B

Runs the same ops under two (or more) kernel profiles, fold policies (or
FILE.py:CLASS), CPU profiles (or FILE.toml) or granules and reports the totals
side by side, the ops whose costs differ most, and the first op after which
the page tables part.
"""

from __future__ import annotations

import argparse
import json
import sys

from tui.errors import UserError

NAME = "compare"
HELP = "run one scenario under two or more kernel profiles, policies, CPUs or granules, side by side"
KEYS = ("ops", "pte_reads", "pte_writes", "converts", "folds", "unfolds", "flush_tlb_range", "tlbi",
        "dsb", "page_faults", "tlb_hits", "tlb_misses", "tlb_conflicts", "invariant_violations", "cycles",
        "cont_blocks")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", metavar="TARGET", help="built-in scenario, .pts file, .ptsnap or FILE.json[:N]")
    p.add_argument("--kernel", action="append", default=[], help="kernel profile (repeat: one per run)")
    p.add_argument("--policy", action="append", default=[], help="fold policy (repeat: one per run)")
    p.add_argument("--cpu", action="append", default=[], help="CPU profile (repeat: one per run)")
    p.add_argument("--granule", action="append", default=[],
                   help="granule: once for every run, or repeated (one per run) to compare granules")
    p.add_argument("--top", type=int, default=10, help="ops with the largest cost differences to list")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _variants(args: argparse.Namespace) -> tuple[str, list[str]]:
    # a single --granule is the granule of every run; given twice or more it is what varies
    granules = args.granule if len(args.granule) > 1 else []
    given = [(k, v) for k, v in (("kernel", args.kernel), ("policy", args.policy), ("cpu", args.cpu),
                                 ("granule", granules)) if v]
    if len(given) != 1:
        raise UserError("compare: vary exactly one of --kernel, --policy, --cpu or --granule, giving it "
                        "twice or more (e.g. --kernel v6.9 --kernel v7.0)")
    what, values = given[0]
    if len(values) < 2:
        raise UserError(f"compare: give --{what} at least twice (one per run)")
    return what, values


def run(args: argparse.Namespace) -> int:
    from engine.compare_configs import Run, compare_sessions
    from tui.targets import open_target

    what, values = _variants(args)
    if args.top < 0:
        raise UserError("compare: --top must be 0 or more")
    runs = []
    one_granule = args.granule[0] if len(args.granule) == 1 else None
    for v in values:
        kw = {what: v} if what != "granule" else {"granule": v}
        s = open_target(args.target, **({"granule": one_granule} | kw), command="compare")
        m = s.machine
        runs.append(Run({"kernel": m.arch.profile.name, "policy": m.policy.name, "cpu": m.arch.cpu.name,
                         "granule": m.arch.g.name}, s))

    def progress(label: str, k: int, n: int) -> None:
        if sys.stderr.isatty():
            print(f"\r{label}: op {k}/{n}" + " " * 10, end="", file=sys.stderr, flush=True)

    try:
        result = compare_sessions(runs, progress=progress, top=args.top)
    except Exception as e:  # an op that fails under one of the settings
        raise UserError(f"compare: {e}") from None
    finally:
        if sys.stderr.isatty():
            print("\r" + " " * 60 + "\r", end="", file=sys.stderr)
    for r in runs:
        if r.session.error is not None:
            raise UserError(f"compare: under {what} {r.label[what]}: {r.session.error[1]}")
    d = result.as_dict()
    if args.json:
        d.update({"target": args.target, "varied": what})
        print(json.dumps(d))
        return 0
    labels = [str(r.label[what]) for r in runs]
    width = max(12, *(len(x) for x in labels))
    print(f"{args.target}: {what} " + " vs ".join(labels))
    print(f"  {'':<22}" + "".join(f"{x:>{width + 2}}" for x in labels))
    for k in KEYS:
        vals = [r["totals"].get(k, 0) for r in d["runs"]]
        fmt = (lambda v: f"{v:>{width + 2},.0f}") if k == "cycles" else (lambda v: f"{v:>{width + 2},}")
        mark = "  *" if len(set(vals)) > 1 else ""
        print(f"  {k:<22}" + "".join(fmt(v) for v in vals) + mark)
    div = d["first_divergence"]
    if what == "granule":  # other page sizes, other tables: no entry to set against another
        print(f"page tables: not compared entry by entry across granules (first differ after op "
              f"{div['op']})" if div else "page tables: identical after every op")
    elif div is None:
        print("page tables: identical after every op")
    else:
        print(f"page tables first differ after op {div['op']} ({div['text']})"
              + (f": {div['process']} {div['addr']}: " + " vs ".join(str(v) for v in div["values"])
                 if div["addr"] else ""))
    if d["op_cost_diffs"]:
        print(f"ops whose costs differ most ({labels[0]} vs {labels[1]}):")
        for o in d["op_cost_diffs"]:
            detail = ", ".join(f"{c} {a}→{b}" for c, (a, b) in list(o["counters"].items())[:5])
            a, b = o["cycles"]
            print(f"  op {o['op']:>5} {o['text'][:40]:<40} {a:>12,.0f} → {b:>12,.0f}  {detail}")
    return 0
