# SPDX-License-Identifier: GPL-2.0-only
"""Run ``ptlab ARGS...`` and send it a real SIGINT at a chosen interrupt poll.

``python tests/sigint_driver.py REPORT LINE N -- ARGS...`` runs the CLI in
this process; at the N-th interrupt poll made while the machine applies the
op of scenario line LINE, the process sends itself SIGINT -- the real signal,
through the CLI's own handlers. The long op therefore cannot finish before
the signal, whatever the machine's speed (the tests used to sleep and race
the clock). REPORT receives a JSON object: whether the signal was sent and
how many more polls that op made after it (the stop latency, counted in polls
rather than seconds).
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.mm.base import MmContext as Kernel  # noqa: E402
from engine.scenario_machine import Machine  # noqa: E402


def main() -> int:
    # a terminal's Ctrl-C finds Python's handler; a background job of a non-interactive
    # shell starts with SIGINT ignored, and the tests must not depend on how they were run
    signal.signal(signal.SIGINT, signal.default_int_handler)
    report, line, n, sep, *args = sys.argv[1:]
    assert sep == "--", "usage: sigint_driver.py REPORT LINE N -- ARGS..."
    line_no, after = int(line), int(n)
    state = {"line": 0, "polls": 0, "sent": False, "polls_after": 0}

    apply = Machine.apply

    def tracking_apply(self, op):  # type: ignore[no-untyped-def]
        state["line"] = op.line
        try:
            return apply(self, op)
        finally:
            state["line"] = 0

    poll = Kernel.poll_interrupt

    def counting_poll(self):  # type: ignore[no-untyped-def]
        # only the chosen op counts (not the replay that later undoes it)
        if state["line"] == line_no and state["sent"]:
            state["polls_after"] += 1
        elif state["line"] == line_no:
            state["polls"] += 1
            if state["polls"] >= after:
                state["sent"] = True
                os.kill(os.getpid(), signal.SIGINT)  # handled at the next bytecode, in this thread
        return poll(self)

    Machine.apply = tracking_apply  # type: ignore[method-assign]
    Kernel.poll_interrupt = counting_poll  # type: ignore[method-assign]
    from tui.cli import main as cli_main

    try:
        code = cli_main(args)
    finally:
        Path(report).write_text(json.dumps(state))
    return code


if __name__ == "__main__":
    sys.exit(main())
