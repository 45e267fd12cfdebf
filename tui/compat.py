# SPDX-License-Identifier: GPL-2.0-only
"""Work-arounds for bugs in the libraries the TUI uses, each small and guarded.

* Textual's ``OptionList`` pages with ``self._index_to_line[...]``, a map
  filled when the list is laid out. PageUp/PageDown pressed before that --
  e.g. right after opening the command palette (Ctrl-P) -- raised KeyError
  and ended the app (found by the TUI monkey test; seen in Textual 8.2 and
  elsewhere, e.g. kagan-sh/kagan-legacy#31). Until the lines exist the key
  does nothing, which is what it would do on an empty list.
* ``Screen.dismiss()`` pops the *top* screen, whichever screen calls it. A
  second Esc or Enter queued for a dialog (or the command palette) that is
  already closing therefore popped the main screen, and the app died with
  "No screens on stack" (the monkey test again: two keys faster than a
  redraw). Only the screen on top may dismiss itself; otherwise it is a no-op.
* The command palette's search worker, ending, shows or hides its result list
  with ``query_one(CommandList)``. A search that ended while the palette was
  being taken down (its children already removed) raised NoMatches and ended
  the app (the monkey's long campaign: a search typed into the palette, keys
  and a resize arriving together). With no list left there is nothing to show.
* A mouse press on a widget that was removed since the last layout (a
  dialog's text, a list option being replaced) starts a text selection whose
  container -- the removed widget's parent -- is None, and Textual raises
  AttributeError ('NoneType' object has no attribute 'region'), ending the
  app (the long monkey campaign; reproduced in tests/test_tui_compat.py).
  The press is dropped, as a press on nothing would be.
"""

from __future__ import annotations

import contextlib

_applied = False


def patch_textual() -> None:
    global _applied
    if _applied:
        return
    _applied = True
    try:
        from textual.widgets import OptionList
    except ImportError:  # pragma: no cover
        return
    original = getattr(OptionList, "_move_page", None)
    if original is None:  # pragma: no cover - a Textual without it has no such bug
        return

    def _move_page(self, direction):  # type: ignore[no-untyped-def]
        lines = getattr(self, "_index_to_line", None)
        if isinstance(lines, dict) and (self.highlighted or 0) not in lines:
            return  # not laid out yet
        original(self, direction)

    OptionList._move_page = _move_page

    from textual.await_complete import AwaitComplete
    from textual.screen import Screen

    dismiss = Screen.dismiss

    def _dismiss(self, result=None):  # type: ignore[no-untyped-def]
        try:
            on_top = self.app.screen is self
        except Exception:  # noqa: BLE001 - no app or an empty stack: nothing to pop
            on_top = False
        if not on_top:
            return AwaitComplete.nothing()
        return dismiss(self, result)

    _dismiss.__doc__ = dismiss.__doc__
    Screen.dismiss = _dismiss

    from textual.command import CommandPalette
    from textual.css.query import NoMatches

    watch = getattr(CommandPalette, "_watch__list_visible", None)
    if watch is not None:
        def _watch__list_visible(self):  # type: ignore[no-untyped-def]
            with contextlib.suppress(NoMatches):  # the palette is closing: its list is gone
                watch(self)

        CommandPalette._watch__list_visible = _watch__list_visible

    from textual import events

    forward = Screen._forward_event

    def _forward_event(self, event):  # type: ignore[no-untyped-def]
        try:
            return forward(self, event)
        except AttributeError as e:
            if isinstance(event, events.MouseDown) and "'region'" in str(e):
                return None  # the widget under the pointer is gone: nothing to select
            raise

    Screen._forward_event = _forward_event
