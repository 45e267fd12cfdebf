# SPDX-License-Identifier: GPL-2.0-only
"""ptlab replay FILE.ptsnap: rebuild a saved session, go to a step, verify it.

``--verify`` re-executes every op and compares each op's state digest and
costs with the file: exit status 1 with the first divergence (op, address,
expected vs found). With ``--kernel``/``--cpu``/``--policy`` the ops are
replayed under another configuration and the divergences are reported rather
than refused -- the tool for "did my policy change alter behaviour?".
"""

from __future__ import annotations

import argparse
import json
import sys

from tui.errors import CheckFailed, UserError

NAME = "replay"
HELP = "replay a saved session (.ptsnap): go to a step, or --verify it by re-execution"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE.ptsnap")
    p.add_argument("--to", metavar="STEP", help="stop after this many ops, or at OP.EVENT inside an op "
                   "(default: all)")
    p.add_argument("--verify", action="store_true",
                   help="re-execute every op and compare digests and costs with the file (exit 1 on a "
                        "divergence)")
    p.add_argument("--kernel", help="replay under another kernel profile")
    p.add_argument("--cpu", help="replay on another CPU profile")
    p.add_argument("--policy", help="replay with another fold policy (NAME or FILE.py:CLASS)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _progress(k: int, n: int) -> None:
    if sys.stderr.isatty():
        print(f"\rverifying op {k}/{n}", end="", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    from engine.text import escape_controls
    from snapshots import SnapshotError
    from snapshots.sessions import open_session, verify
    from tui.commands.show import parse_step
    from tui.position_summary import position_summary

    overrides = {"kernel": args.kernel, "cpu": args.cpu, "policy": args.policy}
    to = parse_step(args.to, "replay", "--to")  # N or N.E, as show --at takes
    if to is not None and args.verify:
        raise UserError("replay: --to and --verify cannot be combined (--verify re-executes every op)")
    from engine.session import SessionError

    try:
        if args.verify:
            try:
                res = verify(args.file, progress=_progress, **overrides)
            except SessionError as e:  # an op that cannot run under the overrides (a failing policy)
                raise UserError(f"replay: {args.file}: {e}") from None
            if sys.stderr.isatty():
                print("\r" + " " * 40 + "\r", end="", file=sys.stderr)
            for w in res.warnings:
                print(f"ptlab: warning: {escape_controls(w)}", file=sys.stderr)
            message = None
            div = res.divergence
            if div is not None:
                if div.what == "record":
                    message = f"replay: {div.message()}"
                elif div.what == "checkpoint":
                    message = f"replay: {args.file}: {div.message()}"
                else:
                    message = f"replay: {args.file}: diverges at {div.message()}"
            if args.json:
                out = {"file": args.file, "ok": res.ok, "ops_checked": res.ops_checked,
                       "first_divergence": None if div is None else div.as_dict(),
                       "warnings": res.warnings}
                if message:
                    out["error"] = message
                print(json.dumps(out, allow_nan=False))
            elif res.ok:
                print(f"{args.file}: {res.ops_checked} ops re-executed, every digest and cost matches")
            if message:
                err = CheckFailed(message)
                err.json_done = args.json
                raise err
            return 0
        loaded = open_session(args.file, **overrides)
    except SnapshotError as e:
        raise UserError(str(e)) from None
    try:
        s = loaded.session
        from engine.session import Position

        if to is None:
            to = Position(len(s.ops))
        elif to.op > len(s.ops) or (to.op == len(s.ops) and to.event):
            raise UserError(f"replay: --to {args.to}: the file has {len(s.ops)} ops")
        try:
            s.seek(to)
        except SnapshotError:
            raise
        except Exception as e:  # an op that cannot run under the overrides
            raise UserError(f"replay: {escape_controls(str(e))}") from None
        for w in s.warnings:  # the file's, and any met while seeking (a checkpoint re-executed)
            print(f"ptlab: warning: {escape_controls(w)}", file=sys.stderr)
        summary = position_summary(s)
        summary["position"] = str(s.position)  # N, or N.E inside op N + 1
        if args.json:
            h = loaded.header
            summary.update({"file": args.file, "header": {
                "kernel": h.kernel, "granule": h.granule, "cpu": h.cpu, "policy": h.policy, "seed": h.seed,
                "scenario": h.scenario_name, "created": h.created, "tool_version": h.tool_version},
                "warnings": list(s.warnings),
                "truncated": loaded.snapshot.truncated})
            print(json.dumps(summary, allow_nan=False))
        else:
            h = loaded.header
            print(escape_controls(f"{args.file}: {h.scenario_name or '(unnamed)'} — kernel {h.kernel}, "
                                  f"{h.granule}, cpu {h.cpu}, policy {h.policy}, {len(s.ops)} ops")
                  + (" (truncated)" if loaded.snapshot.truncated else ""))
            print(summary_text(summary))
        return 0
    finally:
        loaded.snapshot.close()


def summary_text(summary: dict) -> str:
    from engine.text import escape_controls

    lines = [f"at step {summary.get('position', summary['step'])} / {summary['ops']}"]
    t = summary["totals"]
    lines.append("  " + "  ".join(f"{k}={t[k]}" for k in ("pte_writes", "converts", "folds", "unfolds",
                                                        "flush_tlb_range", "tlbi", "cycles") if k in t))
    for p in summary["processes"]:
        lines.append(f"  {escape_controls(str(p['name']))}: {p['present']} present PTEs, "
                     f"{p['cont_blocks']} contiguous blocks")
    return "\n".join(lines)
