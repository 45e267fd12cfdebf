# SPDX-License-Identifier: GPL-2.0-only
"""A place in a session: ``(op, event)`` (see engine.session's docstring).

Its own module because the session's parts -- the breakpoint search below the
session, the queries above it -- all name places, and the session imports the
search (the search cannot import the session).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Position:
    op: int
    event: int = 0

    def __str__(self) -> str:
        return f"{self.op}" if not self.event else f"{self.op}.{self.event}"
