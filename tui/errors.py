# SPDX-License-Identifier: GPL-2.0-only
"""Errors that end a command with one clear line instead of a traceback."""


class UserError(Exception):
    """Bad input from the user (file, syntax, argument): exit status 2."""

    exit_code = 2
    json_done = False  # the command printed its --json result already: the error adds nothing to stdout


class CheckFailed(Exception):
    """A requested check failed (e.g. replay --verify divergence): exit status 1."""

    exit_code = 1
    json_done = False  # as UserError's
