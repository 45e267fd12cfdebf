# SPDX-License-Identifier: GPL-2.0-only
"""The op log: one row per op with its costs, expandable into its arch calls
and events. Line API, so a session of a million ops scrolls like ten."""

from __future__ import annotations

from bisect import bisect_right
from typing import TYPE_CHECKING, Any

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.cache import LRUCache
from textual.geometry import Size
from textual.message import Message
from textual.reactive import var
from textual.scroll_view import ScrollView
from textual.strip import Strip

from engine.session import Position
from tui.eventfmt import call_depths, format_event, op_costs, op_text
from tui.widgets.scrolling import set_virtual_size

if TYPE_CHECKING:
    from engine.session import Session


class OpLog(ScrollView, can_focus=True):
    COMPONENT_CLASSES = {"oplog--done", "oplog--next", "oplog--future", "oplog--cursor", "oplog--event",
                         "oplog--event-done", "oplog--marker", "oplog--error", "oplog--costs"}
    DEFAULT_CSS = """
    OpLog { background: $surface; scrollbar-size-vertical: 1; }
    OpLog > .oplog--done { color: $foreground; }
    OpLog > .oplog--next { color: $text-accent; text-style: bold; }
    OpLog > .oplog--future { color: $foreground 50%; }
    OpLog > .oplog--cursor { background: $primary-muted; }
    OpLog > .oplog--event { color: $foreground 60%; }
    OpLog > .oplog--event-done { color: $foreground 90%; }
    OpLog > .oplog--marker { color: $text-accent; text-style: bold; }
    OpLog > .oplog--error { color: $text-error; text-style: bold; }
    OpLog > .oplog--costs { color: $text-primary; }
    """
    BINDINGS = [
        Binding("up,k", "move(-1)", "up", show=False),
        Binding("down,j", "move(1)", "down", show=False),
        Binding("pageup", "move(-10)", "page up", show=False),
        Binding("pagedown", "move(10)", "page down", show=False),
        Binding("home", "edge(-1)", "first", show=False),
        Binding("end", "edge(1)", "last", show=False),
        Binding("enter", "toggle", "expand", tooltip="Expand / collapse the op into its calls and events"),
        Binding("space", "seek", "go here", tooltip="Move the session to the selected op or event"),
    ]

    cursor: var[int] = var(0, init=False)

    class Expand(Message):
        def __init__(self, op: int, expand: bool) -> None:
            super().__init__()
            self.op = op
            self.expand = expand

    class SeekTo(Message):
        def __init__(self, position: Position) -> None:
            super().__init__()
            self.position = position

    def __init__(self, session: Session | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        self.session = session
        self.position = Position(0, 0)
        self.expanded: dict[int, list[tuple]] = {}
        self._keys: list[int] = []  # sorted expanded ops
        self._before: list[int] = []  # rows of events before each expanded op's events
        self._cache: LRUCache[tuple, Strip] = LRUCache(512)
        self._gen = 0
        self.follow = True

    # --- data -------------------------------------------------------------------------------
    def set_session(self, session: Session) -> None:
        self.session = session
        self.expanded.clear()
        self._reindex()
        self.update_position(Position(0, 0))

    def set_expanded(self, op: int, events_: list[tuple] | None) -> None:
        if events_ is None:
            self.expanded.pop(op, None)
        else:
            self.expanded[op] = events_
        self._reindex()
        self.cursor = min(self.cursor, max(0, self.n_rows - 1))
        self.refresh()

    def _reindex(self) -> None:
        self._keys = sorted(self.expanded)
        before = []
        acc = 0
        for k in self._keys:
            before.append(acc)
            acc += len(self.expanded[k])
        self._before = before
        self._gen += 1
        self._cache.clear()
        n_ops = self.session.n_ops if self.session is not None else 0
        set_virtual_size(self, Size(self._width(), n_ops + acc))

    @property
    def n_rows(self) -> int:
        n = self.session.n_ops if self.session is not None else 0
        return n + sum(len(v) for v in self.expanded.values())

    def row_of(self, op: int, event: int | None = None) -> int:
        """Row of op (or of event index ``event`` of an expanded op)."""
        i = bisect_right(self._keys, op - 1)  # expanded ops before op
        extra = self._before[i] if i < len(self._keys) else sum(len(self.expanded[k]) for k in self._keys)
        row = op + extra
        if event is not None and op in self.expanded:
            row += 1 + min(event, len(self.expanded[op]) - 1)
        return row

    def locate(self, row: int) -> tuple[int, int | None]:
        """(op, event index or None) of a row."""
        extra = 0
        for k, b in zip(self._keys, self._before, strict=True):
            n = len(self.expanded[k])
            op_row = k + b
            if row <= op_row:
                break
            if row <= op_row + n:
                return k, row - op_row - 1
            extra = b + n
        return row - extra, None

    def update_position(self, pos: Position) -> None:
        self.position = pos
        self._gen += 1
        self._cache.clear()
        n_ops = self.session.n_ops if self.session is not None else 0
        set_virtual_size(self, Size(self._width(), self.n_rows))
        if self.follow and n_ops:
            op = min(pos.op, n_ops - 1)
            ev = pos.event if pos.op in self.expanded and pos.event else None
            self.set_reactive(OpLog.cursor, self.row_of(op, ev))
            self._reveal(self.cursor)
        self.refresh()

    def _reveal(self, row: int) -> None:
        h = self.scrollable_content_region.height
        if not h:
            return
        y = self.scroll_offset.y
        if row < y or row >= y + h:
            self.scroll_to(y=max(0, row - h // 2), animate=False, immediate=True)

    def watch_cursor(self, old: int, new: int) -> None:
        self._cache.clear()
        self.refresh()
        self._reveal(new)

    # --- actions ----------------------------------------------------------------------------
    def action_move(self, delta: int) -> None:
        if self.n_rows:
            self.cursor = max(0, min(self.n_rows - 1, self.cursor + delta))

    def action_edge(self, direction: int) -> None:
        if self.n_rows:
            self.cursor = 0 if direction < 0 else self.n_rows - 1

    def action_toggle(self) -> None:  # type: ignore[override]  # this widget's own action, not DOMNode's
        op, ev = self.locate(self.cursor)
        self.post_message(self.Expand(op, op not in self.expanded))

    def action_seek(self) -> None:
        op, ev = self.locate(self.cursor)
        self.post_message(self.SeekTo(Position(op, 0 if ev is None else ev)))

    def on_click(self, event: events.Click) -> None:
        row = event.y + self.scroll_offset.y
        if 0 <= row < self.n_rows:
            self.cursor = row
            if event.chain >= 2:
                self.action_toggle()

    # --- rendering -------------------------------------------------------------------------
    def _style(self, *names: str) -> Style:
        st = self.get_component_rich_style(f"oplog--{names[0]}")
        for n in names[1:]:
            st += self.get_component_rich_style(f"oplog--{n}", partial=True)
        return st

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._cache.clear()

    def row_segments(self, row: int, width: int) -> list[tuple[str, tuple[str, ...]]]:
        s = self.session
        assert s is not None  # there are rows only once a session is set
        op, ev = self.locate(row)
        pos = self.position
        if ev is not None:
            events_ = self.expanded[op]
            depth = call_depths(events_)[ev]
            done = op < pos.op or (op == pos.op and ev < pos.event)
            mark = "▶" if (op == pos.op and ev == pos.event and pos.event) else " "
            text = f"  {ev + 1:>5} {' ' * min(depth, 6)}{format_event(events_[ev])}"
            return [(mark, ("marker",)), (text[: max(1, width - 1)].ljust(width - 1),
                                          ("event-done" if done else "event",))]
        o = s.ops[op]
        rec = s.records[op] if op < len(s.records) else None
        if op < pos.op:
            kind = "done"
        elif op == pos.op:
            kind = "next"
        else:
            kind = "future"
        error = s.error if s.error is not None and s.error[0] == op and rec is None else None
        failed = error is not None
        if failed:
            kind = "error"
        mark = "◐" if (op == pos.op and pos.event) else ("▶" if op == pos.op else " ")
        if failed:
            mark = "✗"
        exp = "▾" if op in self.expanded else "▸"
        costs = (op_costs(rec.counters if rec else None, rec.cycles if rec else None) if not failed
                 else "✗ failed".rjust(len(op_costs(None, None))))
        head = f"{exp}{op + 1:>5} "
        room = max(8, width - 1 - len(head) - len(costs) - 1)
        text = op_text(o)
        if error is not None:  # the lasting mark: what failed, not only a notification
            text += "  ✗ " + error[1].removeprefix(f"op {op + 1} ({o}): ")
        if len(text) > room:
            text = text[: room - 1] + "…"
        return [(mark, ("marker",)), (head + text.ljust(room) + " ", (kind,)), (costs, ("costs",))]

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        row = scroll_y + y
        base = self.rich_style
        if self.session is None or row >= self.n_rows:
            return Strip.blank(width, base)
        cur = row == self.cursor
        key = (row, self._gen, width, cur)
        strip = self._cache.get(key)
        if strip is None:
            segs = []
            for text, tags in self.row_segments(row, width):
                st = self._style(*tags, *(("cursor",) if cur else ()))
                segs.append(Segment(text, st))
            strip = Strip(segs)
            self._cache[key] = strip
        return strip.crop_extend(scroll_x, scroll_x + width, base)

    def _width(self) -> int:
        return max(20, self.scrollable_content_region.width)

    def on_resize(self, event: events.Resize) -> None:
        self._cache.clear()
        self.virtual_size = Size(self._width(), self.n_rows)

    def row_text(self, row: int, width: int = 100) -> str:
        return "".join(t for t, _ in self.row_segments(row, width))
