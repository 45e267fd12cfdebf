# SPDX-License-Identifier: GPL-2.0-only
"""User-level operations: one scenario line = one Op.

Ops are plain data (verb + normalised arguments) so that a session can record
them, a snapshot can store them and a replay can re-run them bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Op:
    verb: str  # "mmap", "touch", "fork", ...
    args: dict[str, Any] = field(default_factory=dict)  # ints, strs, bools, None only
    line: int = 0  # line in the scenario source (0: none)
    text: str = ""  # the source line as written

    def to_plain(self) -> dict[str, Any]:
        return {"verb": self.verb, "args": dict(self.args), "line": self.line, "text": self.text}

    @classmethod
    def from_plain(cls, d: dict[str, Any]) -> Op:
        if not isinstance(d, dict) or not isinstance(d.get("verb"), str):
            raise ValueError("an op needs a string 'verb'")
        args = d.get("args", {})
        if not isinstance(args, dict):
            raise ValueError("op args must be a map")
        for k, v in args.items():
            if not isinstance(k, str) or not (v is None or isinstance(v, (int, str, bool))):
                raise ValueError(f"op argument {k!r} has an unsupported type")
        line = d.get("line", 0)
        text = d.get("text", "")
        if not isinstance(line, int) or not isinstance(text, str):
            raise ValueError("op line must be an int and text a string")
        return cls(d["verb"], dict(args), line, text)

    def __str__(self) -> str:
        if self.text:
            return self.text.strip()
        parts = [self.verb] + [f"{k}={v}" for k, v in self.args.items()]
        return " ".join(parts)
