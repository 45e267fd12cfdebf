# SPDX-License-Identifier: GPL-2.0-only
"""ptlab show TARGET: the page tables at any step, as ptdump text, JSON or CSV."""

from __future__ import annotations

import argparse
import sys

from tui.errors import UserError

NAME = "show"
HELP = "print the page tables at a step (ptdump-style text, JSON or CSV)"
DESCRIPTION = ("Open TARGET (a built-in scenario, a .pts file, a .ptsnap snapshot, or a vectors "
               "FILE.json[:TRACE]), go to a step and print one process's page tables: ptdump merges "
               "runs of equal entries like arch/arm64/mm/ptdump.c and marks contiguous ones CON.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", metavar="TARGET")
    p.add_argument("--at", metavar="STEP", default=None,
                   help="step to show: ops completed, or OP.EVENT inside an op (default: the end)")
    p.add_argument("--range", metavar="START-END", help="only this virtual address range (hex)")
    p.add_argument("--format", choices=("ptdump", "json", "csv"), default=None,
                   help="output format (default ptdump)")
    p.add_argument("--process", metavar="NAME", help="process to show (default: the current one)")
    p.add_argument("--kernel", help="kernel profile override")
    p.add_argument("--granule", help="granule override (4K, 16K, 64K)")
    p.add_argument("--cpu", help="CPU profile override")
    p.add_argument("--policy", help="fold policy override")
    p.add_argument("--json", action="store_true", help="same as --format json")


def parse_step(text: str | None, command: str = "show", flag: str = "--at"):
    """A step the user typed: N (ops done) or N.E (event E inside op N + 1)."""
    from engine.session import Position
    from engine.text import escape_controls

    if text is None:
        return None
    try:
        if not text.isascii():
            raise ValueError
        if "." in text:
            op, ev = text.split(".", 1)
            pos = Position(int(op), int(ev))
        else:
            pos = Position(int(text))
    except ValueError:
        shown = escape_controls(text)[:40]
        raise UserError(f"{command}: {flag} {shown!r} is not a step (use N or N.E)") from None
    if pos.op < 0 or pos.event < 0:
        raise UserError(f"{command}: {flag} must not be negative")
    return pos


def parse_range(text: str | None) -> tuple[int, int]:
    if text is None:
        return 0, 1 << 64
    try:
        a, b = text.split("-", 1)
        start, end = int(a, 16), int(b, 16)
    except ValueError:
        raise UserError(f"show: --range {text!r} is not START-END in hex") from None
    if end <= start:
        raise UserError(f"show: --range {text!r} is empty")
    return start, end


def run(args: argparse.Namespace) -> int:
    from snapshots.errors import SnapshotError
    from tui.export_io import ExportError, find_process, render_tables
    from tui.targets import open_target

    if args.json and args.format not in (None, "json"):
        raise UserError(f"show: --json conflicts with --format {args.format}")
    fmt = "json" if args.json else (args.format or "ptdump")
    pos = parse_step(args.at)
    start, end = parse_range(args.range)
    s = open_target(args.target, kernel=args.kernel, granule=args.granule, cpu=args.cpu, policy=args.policy,
                    command="show")
    try:
        if pos is None:
            s.run(progress=_progress)
            s.seek(len(s.ops))
        else:
            if pos.op > len(s.ops):
                raise UserError(f"show: step {pos.op} is past the end ({len(s.ops)} ops)")
            s.seek(pos)
    except UserError:
        raise
    except SnapshotError:
        raise
    except Exception as e:  # an op that cannot run (bad scenario line, failing policy)
        raise UserError(f"show: {e}") from None
    finally:
        if sys.stderr.isatty():
            print("\r" + " " * 40 + "\r", end="", file=sys.stderr)
    from engine.text import escape_controls, escape_controls_keep_lines

    for w in s.warnings:  # truncation, a replaced policy, a checkpoint re-executed
        print(f"ptlab: warning: {escape_controls(w)}", file=sys.stderr)
    try:
        proc = find_process(s, args.process)
        text = render_tables(s, proc, fmt, args.target, start, end)
    except ExportError as e:
        raise UserError(f"show: {e}") from None
    print(text if fmt == "json" else escape_controls_keep_lines(text), end="")
    return 0


def _progress(k: int, n: int) -> None:
    if sys.stderr.isatty():
        print(f"\rrunning op {k}/{n}", end="", file=sys.stderr, flush=True)
