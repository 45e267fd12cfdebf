# SPDX-License-Identifier: GPL-2.0-only
"""One module per ``ptlab`` subcommand.

Each module defines ``NAME``, ``HELP``, ``add_arguments(parser)`` and
``run(args) -> int``. Errors a user can cause are raised as
:class:`tui.errors.UserError` (exit 2) or :class:`tui.errors.CheckFailed`
(exit 1); cli.main turns them into one line on stderr (or a JSON object with
an ``error`` field when --json was given).
"""

# Order is the order shown by ``ptlab --help``.
COMMAND_MODULES = (
    "tui.commands.tui_cmd",
    "tui.commands.run",
    "tui.commands.scenarios",
    "tui.commands.compare",
    "tui.commands.replay",
    "tui.commands.diff",
    "tui.commands.show",
    "tui.commands.decode",
    "tui.commands.capture",
    "tui.commands.crosscheck",
    "tui.commands.bench",
)
