# SPDX-License-Identifier: GPL-2.0-only
"""The legend, drawn from tui.legend (the same table as the grid)."""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

from tui import legend


def legend_segments(compact: bool = False) -> list[tuple[str, str, str]]:
    """(glyph, state or mark name, label) for every legend entry."""
    out = []
    for s in legend.STATES:
        if s.name == "outside":
            continue
        sample = s.glyph if s.cont_glyph == s.glyph else f"{s.glyph}{s.cont_glyph}"
        out.append((sample, s.name, s.label))
    for m in legend.MARKS:
        if m.label and m.name not in ("cursor", "diff"):
            out.append((m.sample, m.name, m.label))
    return out


class LegendBar(Widget):
    COMPONENT_CLASSES = legend.component_classes("ptegrid") | {"legend--label"}
    DEFAULT_CSS = """
    LegendBar { height: auto; background: $panel; padding: 0 1; }
    LegendBar > .legend--label { color: $foreground 75%; }
    """ + legend.tcss("LegendBar", "ptegrid")

    def render(self) -> Text:
        text = Text(overflow="fold")
        label = self.get_component_rich_style("legend--label", partial=True)
        for i, (sample, name, lab) in enumerate(legend_segments()):
            if i:
                text.append("  ")
            st = self.get_component_rich_style(f"ptegrid--{name}", partial=True)
            text.append(sample, st)
            text.append(f" {lab}", label)
        text.append("   Rr: upper case = CONT", label)
        return text
