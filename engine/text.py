# SPDX-License-Identifier: GPL-2.0-only
"""Text that came from a file, made safe to print or render.

A snapshot or scenario is hostile input: a name holding ``ESC[2J``, an OSC
title sequence or a newline must not reach the terminal (or Rich markup) as
such. :func:`escape_controls` replaces every C0/C1 control character, DEL and
the line/paragraph separators with a visible escape (``\\x1b``, ``\\n``).
"""

from __future__ import annotations

import re

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _sub(m: re.Match[str]) -> str:
    c = m.group(0)
    return _NAMED.get(c) or (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}")


def escape_controls(text: str) -> str:
    """``text`` with control characters (newlines included) written as escapes."""
    return _CONTROL.sub(_sub, text)


def escape_controls_keep_lines(text: str) -> str:
    """As :func:`escape_controls`, but newlines and tabs stay (multi-line output)."""
    return re.sub("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]", _sub, text)


def escape_markup(text: str) -> str:
    """Control characters escaped and Rich markup neutralised (``[`` -> ``\\[``)."""
    return escape_controls(text).replace("[", "\\[")
