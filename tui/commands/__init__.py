# SPDX-License-Identifier: GPL-2.0-only
"""One module per ``ptlab`` subcommand.

Each module defines ``NAME``, ``HELP``, ``add_arguments(parser)`` and
``run(args) -> int``. Errors a user can cause are raised as
:class:`tui.errors.UserError` (exit 2) or :class:`tui.errors.CheckFailed`
(exit 1); cli.main turns them into one line on stderr (or a JSON object with
an ``error`` field when --json was given).

cli.build_parser imports every command module, so a module imports what its
command needs (the engine's machine and mm, snapshots, Textual) inside
``run``, not at its top: hoisting them made ``ptlab decode``'s imports three
times slower (0.1 s to 0.3 s, ``python -X importtime``).
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
