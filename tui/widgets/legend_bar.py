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
        """Entries laid out greedily, never broken inside one entry."""
        text = Text(no_wrap=True, overflow="crop")
        label = self.get_component_rich_style("legend--label", partial=True)
        width = max(20, self.content_region.width or 120)
        entries = [(sample, name, lab) for sample, name, lab in legend_segments()]
        col = 0
        for sample, name, lab in entries:
            n = len(sample) + 1 + len(lab)
            if col and col + 2 + n > width:
                text.append("\n")
                col = 0
            elif col:
                text.append("  ")
                col += 2
            st = self.get_component_rich_style(f"ptegrid--{name}", partial=True) if name else label
            text.append(sample, st)
            text.append(f" {lab}", label)
            col += n
        return text

    def on_resize(self) -> None:
        self.refresh(layout=True)
