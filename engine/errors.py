# SPDX-License-Identifier: GPL-2.0-only
"""The errors of a user's scenario (text or op), of a long op stopped part way, and of a session."""

from __future__ import annotations


class ScenarioError(ValueError):
    """Bad scenario input: unknown verb or name, bad size, an address outside
    any VMA, ... Raised before the machine changes anything.

    ``str()`` is ``file:line: message`` when the source is known.
    """

    def __init__(self, message: str, line: int = 0, file: str = ""):
        super().__init__(message)
        self.message = message
        self.line = line
        self.file = file

    def located(self, file: str, line: int | None = None) -> ScenarioError:
        return ScenarioError(self.message, self.line if line is None else line, file)

    def __str__(self) -> str:
        if self.file and self.line:
            return f"{self.file}:{self.line}: {self.message}"
        if self.line:
            return f"line {self.line}: {self.message}"
        if self.file and not self.message.startswith(self.file):
            return f"{self.file}: {self.message}"
        return self.message


class OpInterrupted(Exception):
    """A long op stopped part way because an interrupt was requested (the
    poll installed with ``Machine.set_interrupt_poll`` returned True).

    The machine is left *mid-op*: whoever ran the op must put it back at the
    op's start state (``Session`` does so from its checkpoints) or discard it.
    """


class SessionError(RuntimeError):
    """A session cannot do what was asked (no such op or grain, an op that failed:
    ``Session.error`` says which and why)."""


class SessionInterrupted(SessionError):
    """``interrupt()`` stopped an op part way; the session is back at that
    op's start (a consistent op boundary, ``position``)."""
