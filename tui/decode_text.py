# SPDX-License-Identifier: GPL-2.0-only
"""A raw descriptor as the user types it, and the text report of its decoding.

Shared by ``ptlab decode`` (tui.commands.decode) and the TUI's decode
dialog (tui.screens.dialog_flows): the same parser, the same words.
"""

from __future__ import annotations

from typing import Any

from tui.errors import UserError


def parse_value(text: str) -> int:
    """A 64-bit value in hex, with or without 0x (underscores allowed); UserError if not."""
    t = text.strip().lower().replace("_", "")
    try:
        v = int(t, 16) if not t.startswith("0x") else int(t, 0)
    except ValueError:
        raise UserError(f"decode: {text!r} is not a hexadecimal value") from None
    if not 0 <= v < 1 << 64:
        raise UserError(f"decode: {text!r} does not fit in 64 bits")
    return v


def describe(value: int, d: Any, granule_name: str, profile_name: str) -> str:
    """The text report of a decoded descriptor (engine.decode), as ``ptlab decode`` prints it."""
    lines = [f"{value:#018x}  ({granule_name} granule, {profile_name} layout {d.layout})",
             f"  {d.kind}: {d.summary}"]
    if d.flags:
        lines.append("  flags: " + " ".join(d.flags))
    for k, v in d.fields.items():
        if isinstance(v, int) and not isinstance(v, bool) and k in ("pfn", "phys", "swp_offset"):
            v = hex(v)
        lines.append(f"  {k:>13}: {v}")
    return "\n".join(lines)
