# SPDX-License-Identifier: GPL-2.0-only
"""ptlab tui [TARGET]: the terminal UI."""

from __future__ import annotations

import argparse
from typing import Any

NAME = "tui"
HELP = "open the terminal UI on a target (default: the built-in demo)"
DESCRIPTION = ("Open the terminal UI. TARGET is a built-in scenario (ptlab scenarios lists them; default: "
               "demo), a .pts scenario file, a .ptsnap snapshot, or FILE.json[:TRACE] from a "
               "ptlab-ptep-vectors/1 file. It needs a terminal: with no tty on stdin it exits at once.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", nargs="?", metavar="TARGET", help="what to open (default: the demo)")
    p.add_argument("--kernel", help="kernel profile (overrides the target's)")
    p.add_argument("--granule", help="4K, 16K or 64K (overrides the target's, where it can)")
    p.add_argument("--cpu", help="CPU profile (overrides the target's)")
    p.add_argument("--policy", help="fold policy: NAME or FILE.py:CLASS (overrides the target's)")
    p.add_argument("--theme", help="Textual theme name (e.g. textual-light, nord, gruvbox)")
    p.add_argument("--pid", type=int, help="capture this live process and open it (as ptlab capture PID "
                   "--save FILE then ptlab tui FILE)")
    p.add_argument("--keymap", help="keymap TOML file (default $PTLAB_KEYMAP or ~/.config/ptlab/keymap.toml)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tui.errors import UserError
    from tui.targets import open_target

    if args.pid is not None:
        if args.target is not None:
            raise UserError("tui: give a TARGET or --pid, not both")
        from tui.commands.capture import capture_to_session

        session = capture_to_session(args.pid, granule=args.granule or "4K", kernel=args.kernel or "v7.0",
                                     cpu=args.cpu or "neoverse-n1", command="tui")
    else:
        session = open_target(args.target, kernel=args.kernel, granule=args.granule, cpu=args.cpu,
                              policy=args.policy)
    from tui.app import PtlabApp

    app = PtlabApp(session, keymap_path=Path(args.keymap) if args.keymap else None)
    if args.theme:
        if args.theme not in app.available_themes:
            known = ", ".join(sorted(app.available_themes))
            raise UserError(f"tui: unknown theme {args.theme!r} (known: {known})")
        app.theme = args.theme
    import sys

    if not sys.stdin.isatty():  # Textual would wait for keys that never come, spinning a core
        raise UserError("tui: needs a terminal (stdin is not a tty); for a run without one: "
                        "ptlab run TARGET, ptlab show TARGET")
    quiet_crashes(app)
    app.run()
    return exit_status(app)


def quiet_crashes(app: Any) -> None:
    """An exception that escapes the app ends it without Textual's traceback,
    which prints local variables -- the contents of a file that may be hostile
    (PTLAB_DEBUG=1 keeps it); exit_status() then reports it in one line."""
    import os

    if os.environ.get("PTLAB_DEBUG"):
        return

    def fatal() -> None:
        app._close_messages_no_wait()

    app._fatal_error = fatal


def exit_status(app: Any) -> int:
    """0, or the one-line error of an exception that ended the app (a hostile
    record met while running is the input's fault: exit 2; anything else is
    a bug in ptlab: UserError would hide it, so it is raised for the CLI's
    one-line internal-error report)."""
    from tui.errors import UserError

    error = getattr(app, "_exception", None)
    if error is None:
        return int(app.return_code or 0)
    from engine.errors import ScenarioError
    from engine.session import SessionError
    from snapshots.errors import SnapshotError

    if isinstance(error, (SnapshotError, ScenarioError, SessionError)):
        raise UserError(str(error)) from None
    raise error
