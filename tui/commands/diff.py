# SPDX-License-Identifier: GPL-2.0-only
"""ptlab diff A.ptsnap B.ptsnap: the first op where two saved sessions part,
and the page-table difference at that step (or at --at STEP)."""

from __future__ import annotations

import argparse
import itertools
import json
import sys

from tui.errors import UserError

NAME = "diff"
HELP = "compare two saved sessions: first differing op and the page-table difference"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("a", metavar="A.ptsnap")
    p.add_argument("b", metavar="B.ptsnap")
    p.add_argument("--at", metavar="STEP", type=int,
                   help="show the page-table difference after this many ops (default: the first "
                        "divergent op)")
    p.add_argument("--limit", type=_limit, default=20, help="descriptors to list (default 20)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


MAX_LIMIT = 1_000_000
# engine.queries.first_divergence's answer, as this command words it
REASONS = {"ops": "the ops differ", "tables": "the page tables differ after it", "costs": "its costs differ",
           "length": "one session is longer"}


def _limit(text: str) -> int:
    try:
        if not text.isascii() or len(text) > 20:
            raise ValueError
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid count: {text[:40]!r}") from None


def run(args: argparse.Namespace) -> int:
    from engine import queries
    from engine.queries import iter_differences
    from engine.session import Position
    from engine.text import escape_controls as esc
    from snapshots import SnapshotError
    from snapshots.sessions import open_session

    if not 1 <= args.limit <= MAX_LIMIT:
        raise UserError(f"diff: --limit must be between 1 and {MAX_LIMIT:,}")
    try:
        la = open_session(args.a)
        try:
            lb = open_session(args.b)
        except BaseException:
            la.snapshot.close()
            raise
    except SnapshotError as e:
        raise UserError(str(e)) from None
    try:
        sa, sb = la.session, lb.session
        n = min(sa.executed, sb.executed)
        div = queries.first_divergence(sa, sb, costs=True)
        first = div.op
        reason = ("" if first is None else REASONS.get(div.why)
                  or f"op fails in {'AB'[div.side or 0]}: {div.error}")
        at = args.at if args.at is not None else (first + 1 if first is not None else n)
        if at < 0:
            raise UserError("diff: --at must be 0 or more")
        at = min(at, sa.executed, sb.executed)
        sa.seek(Position(at))
        sb.seek(Position(at))
        diffs = list(itertools.islice(iter_differences(sa, sb), args.limit))
        warnings = [f"{w}" for w in sa.warnings + sb.warnings]
        if first is None and diffs:  # the records agree but the states do not: say so, never "identical"
            first, reason = min(at, n), "the records agree but the page tables differ"
        counters: dict[str, list[float]] = {}
        if first is not None and first < n and div.why == queries.COSTS:
            ra, rb = sa.records[first], sb.records[first]
            ca, cb = ra.counters, rb.counters
            counters = {c: [ca.get(c, 0), cb.get(c, 0)] for c in queries.cost_counters_differing(ca, cb)}
            if ra.cycles != rb.cycles:  # (under two CPU profiles the same counts cost differently)
                counters["cycles"] = [round(ra.cycles, 1), round(rb.cycles, 1)]
        if args.json:
            print(json.dumps({
                "a": args.a, "b": args.b, "ops": [sa.executed, sb.executed], "warnings": warnings,
                "first_divergence": None if first is None else {
                    "op": first + 1, "reason": reason,
                    "text": [str(sa.ops[first]) if first < sa.executed else None,
                             str(sb.ops[first]) if first < sb.executed else None],
                    "counters": counters},
                "at": at,
                "differences": [{"process": p, "addr": None if a is None else f"{a:#x}",
                                 "a": None if va is None else f"{va:#018x}",
                                 "b": None if vb is None else f"{vb:#018x}"} for p, a, va, vb in diffs]},
                allow_nan=False))
            return 0 if first is None else 1
        for w in warnings:
            print(f"ptlab: warning: {esc(w)}", file=sys.stderr)
        if first is None:
            print(esc(f"{args.a} and {args.b}: the same {n} ops, identical states and costs"))
        else:
            text = str(sa.ops[first]) if first < sa.executed else "(end)"
            print(esc(f"first divergence: op {first + 1} ({text}): {reason}"))
            for c, (x, y) in counters.items():
                print(f"  {esc(c)}: {x} vs {y}")
        if diffs:
            print(f"page tables after {at} ops:")
            for p, a, va, vb in diffs:
                if a is None:
                    print(f"  process {esc(str(p))} exists in only one session")
                else:
                    print(f"  {esc(str(p))} {a:#018x}: {va:#018x} vs {vb:#018x}")
        return 0 if first is None else 1  # a divergence is a failed check, as for replay --verify
    finally:
        la.snapshot.close()
        lb.snapshot.close()
