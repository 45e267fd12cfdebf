# SPDX-License-Identifier: GPL-2.0-only
"""Changing what a Line-API pane scrolls over without a screen-wide layout pass.

``Widget.virtual_size`` is a reactive with ``layout=True``: every change asks
the screen for a full layout, which repaints every pane (and, through the
footer's keys resizing themselves, usually a second one). Our ScrollViews have
sizes fixed by CSS (``1fr`` or a number of lines), so a new virtual size only
moves their scrollbars. :func:`set_virtual_size` does what the layout pass
would do for such a widget -- store the size, update the scrollbars (showing
or hiding one still lays out, as it changes the content width) and clamp the
scroll offset -- and repaints just this widget.
"""

from __future__ import annotations

from textual.geometry import Size
from textual.widget import Widget


def set_virtual_size(widget: Widget, size: Size) -> None:
    if widget.virtual_size == size:
        return
    scroll_update = getattr(widget, "_scroll_update", None)
    styles = widget.styles
    if (scroll_update is None or not widget.is_mounted or not widget.size
            or styles.is_auto_width or styles.is_auto_height):
        widget.virtual_size = size  # its size may depend on it (or not laid out yet): lay out
        return
    widget.set_reactive(Widget.virtual_size, size)
    scroll_update(size)
    widget.refresh()
