# SPDX-License-Identifier: GPL-2.0-only
"""The scenario's own words about an op: the comment block above it.

Built-in scenarios are written as numbered stories ("# 2. Fold: change one
page and change it back ..."); the main screen shows the comment that
governs the op at the position, found by walking up from the op's line over
other ops and directives to the nearest comment block.
"""

from __future__ import annotations


def comment_for(source: str, line: int, max_lines: int = 6) -> list[str]:
    """The comment lines (without '#') of the nearest comment block above ``line``
    (1-based) of ``source``, walking over op and directive lines; [] if none (a blank
    line after ops ends the search, and the file's licence header never counts)."""
    lines = source.splitlines()
    i = min(line, len(lines) + 1) - 2  # the line above, 0-based
    seen_op = False
    while i >= 0:
        t = lines[i].strip()
        if t.startswith("#"):
            break
        if not t:
            if seen_op:
                return []
        else:
            seen_op = True
        i -= 1
    else:
        return []
    block: list[str] = []
    while i >= 0 and lines[i].strip().startswith("#"):
        block.append(lines[i].strip().lstrip("#").strip())
        i -= 1
    block.reverse()
    if block and block[0].startswith("SPDX-License-Identifier"):
        return []
    # a "# granules: 4K 16K" line is for ptlab (tui/targets.py), not part of the story
    block = [b for b in block if not b.lower().startswith("granules:")]
    return block[-max_lines:]
