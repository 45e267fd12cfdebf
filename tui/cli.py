# SPDX-License-Identifier: GPL-2.0-only
"""The ``ptlab`` command.

``ptlab`` with no arguments opens the TUI on the built-in demo scenario; every
other job is a subcommand (see ``ptlab --help``). A user's mistake ends with
one line on stderr and exit status 2; a failed check with exit status 1;
Ctrl-C with 130, SIGTERM (after the same clean-up) with 143. Anything else
is a bug in ptlab, still reported in one line (exit status 70;
``PTLAB_DEBUG=1`` shows the traceback).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import importlib
import json
import os
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any, NoReturn

from tui.commands import COMMAND_MODULES
from tui.errors import CheckFailed, UserError

# exit status for a bug in ptlab (EX_SOFTWARE); 2 is a user's mistake, 1 a failed check
INTERNAL_ERROR = 70


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as UserError (one line, exit 2)."""

    def error(self, message: str) -> NoReturn:
        raise UserError(f"{self.prog}: {message}")


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, ModuleType]]:
    parser = _Parser(prog="ptlab", description="A page-table lab for the Linux arm64 contpte work.")
    from engine import __version__

    parser.add_argument("--version", action="version", version=f"ptlab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    modules: dict[str, ModuleType] = {}
    for name in COMMAND_MODULES:
        mod = importlib.import_module(name)
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=getattr(mod, "DESCRIPTION", mod.HELP))
        mod.add_arguments(p)
        modules[mod.NAME] = mod
    return parser, modules


def _wants_json(argv: Sequence[str]) -> bool:
    """--json (or show's --format json) was asked for: errors are JSON on stdout too."""
    argv = list(argv)
    return "--json" in argv or "--format=json" in argv or any(
        a == "--format" and b == "json" for a, b in zip(argv, argv[1:], strict=False))


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, so the same clean-up as Ctrl-C's runs
    (a crosscheck's QEMU is killed, temporary files go) before the exit (143)."""


def _on_sigterm(signum: int, frame: object) -> None:  # noqa: ARG001
    raise Terminated


@contextlib.contextmanager
def _sigterm_unwinds() -> Any:
    """Turn SIGTERM into Terminated while a command runs (main thread only; a handler
    someone else installed, or an ignored SIGTERM, is left alone)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread() \
            or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    with _sigterm_unwinds():
        return _main(argv)


def _main(argv: list[str]) -> int:
    try:
        parser, modules = build_parser()
        if not argv:
            argv = ["tui"] if "tui" in modules else ["--help"]
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 2
        if args.command == "tui":  # Textual writes its own escape sequences
            return int(modules[args.command].run(args) or 0)
        real = sys.stdout
        sys.stdout = _SafeText(real)
        try:
            return int(modules[args.command].run(args) or 0)
        finally:
            sys.stdout = real
    except (UserError, CheckFailed) as e:
        _report(str(e), e.exit_code, argv, json_done=e.json_done)
        return e.exit_code
    except BrokenPipeError:
        _quiet_stdout()
        return 0
    except _input_errors() as e:  # a damaged record met part way (snapshots are read lazily)
        _report(str(e), 2, argv)
        return 2
    except RecursionError:
        _report("the input is nested too deeply", 2, argv)
        return 2
    except OSError as e:
        if e.errno in _OUTPUT_ERRNOS:  # stdout on a full disk, /dev/full, a closed terminal
            _quiet_stdout()
            _report(f"cannot write the output: {e.strerror or e}", 2, argv, json_done=True)
            return 2
        if os.environ.get("PTLAB_DEBUG"):
            raise
        return _internal(e, argv)
    except KeyboardInterrupt as e:
        if sys.stderr.isatty():
            print(file=sys.stderr)  # off the progress line
        if isinstance(e, Terminated):
            _report("terminated", 143, argv)
            return 143
        _report("interrupted", 130, argv)
        return 130
    except SystemExit as e:  # --help, --version
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    except MemoryError:
        _report("out of memory", 2, argv)
        return 2
    except Exception as e:  # a bug: still one line (PTLAB_DEBUG=1 shows the traceback)
        if os.environ.get("PTLAB_DEBUG"):
            raise
        return _internal(e, argv)


def _internal(e: BaseException, argv: Sequence[str]) -> int:
    first = (str(e).splitlines() or [""])[0][:300]
    _report(f"internal error: {type(e).__name__}: {first} (this is a bug in ptlab; "
            "PTLAB_DEBUG=1 shows where)", INTERNAL_ERROR, argv)
    return INTERNAL_ERROR


class _SafeText:
    """stdout for the text commands: whatever a file put in a name (ESC[2J, an
    OSC title, a bell) is written as a visible escape, never sent to the
    terminal. Newlines and tabs pass (the output is multi-line)."""

    def __init__(self, stream: Any):
        self._stream = stream

    def write(self, s: str) -> int:
        from engine.text import escape_controls_keep_lines

        return self._stream.write(escape_controls_keep_lines(s))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


_OUTPUT_ERRNOS = {errno.ENOSPC, errno.EIO, errno.EDQUOT, errno.EFBIG, errno.EBADF}


def _input_errors() -> tuple[type[BaseException], ...]:
    from engine.errors import ScenarioError
    from engine.session import SessionError
    from snapshots.errors import SnapshotError

    # an op that cannot run is the input's fault: the ops come from a scenario or a file
    return (SnapshotError, ScenarioError, SessionError)


def _quiet_stdout() -> None:
    """After a broken pipe, point stdout at /dev/null so the interpreter's
    final flush does not complain."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def _report(message: str, code: int, argv: Sequence[str], json_done: bool = False) -> None:
    from engine.text import escape_controls

    line = escape_controls(" ".join(message.split("\n")))  # one line, always, no terminal escapes
    if not line.startswith("ptlab"):
        line = f"ptlab: {line}"
    if _wants_json(argv) and not json_done:
        try:
            print(json.dumps({"error": line.removeprefix("ptlab: "), "exit_status": code}), flush=True)
        except OSError:  # stdout cannot take it (a full disk): the line on stderr still says it
            _quiet_stdout()
    with contextlib.suppress(OSError):
        print(line, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
