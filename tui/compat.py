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
  app (the long monkey campaign; reproduced in tests/test_tui_monkey.py,
  ``test_a_press_on_a_widget_removed_since_the_last_layout``). The press is
  dropped, as a press on nothing would be.

Each patch first checks that what it wraps is still there, in the shape it was
written for: the method, its parameters, and the names in its code that the bug
comes from. A Textual that changed any of them raises ``TextualChanged`` when
``tui.app`` is imported (it calls ``patch_textual``), naming the method, instead
of the patch silently doing nothing; then re-check the bug against that Textual
and update or drop the patch. tests/test_tui_compat.py checks the checks.
pyproject caps Textual below the next major version for the same reason.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import textual
from textual import events
from textual.await_complete import AwaitComplete
from textual.command import CommandPalette
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import OptionList

_applied = False


class TextualChanged(ImportError):
    """Something tui/compat.py patches is gone from Textual, or no longer looks as the patch expects."""


def require(owner: type, name: str, params: Sequence[str], reads: Sequence[str] = ()) -> Callable[..., Any]:
    """``owner.name``, checked to be a function with exactly these parameter names whose code
    still uses the names in ``reads`` (the attributes and calls its bug comes from)."""
    where = f"tui/compat.py: Textual {textual.__version__}: {owner.__name__}.{name}"
    fn = inspect.getattr_static(owner, name, None)
    if isinstance(fn, (staticmethod, classmethod)):
        fn = fn.__func__
    if not inspect.isfunction(fn):
        raise TextualChanged(f"{where} is gone (or not a plain function); check whether the bug "
                             "it patches is still there and update or drop the patch")
    got = list(inspect.signature(fn).parameters)
    if got != list(params):
        raise TextualChanged(f"{where} takes ({', '.join(got)}), the patch was written for "
                             f"({', '.join(params)}); check the patch against this Textual")
    missing = [n for n in reads if n not in fn.__code__.co_names]
    if missing:
        raise TextualChanged(f"{where} no longer uses {', '.join(missing)}, which the patch is about; "
                             "check whether the bug is still there and update or drop the patch")
    return getattr(owner, name)


def patch_textual() -> None:
    """Apply every patch, once; all checks come first, so Textual is patched wholly or not at all."""
    global _applied
    if _applied:
        return
    # the KeyError came from reading the line map (a property) before layout
    move_page = require(OptionList, "_move_page", ("self", "direction"), reads=("_index_to_line",))
    if inspect.getattr_static(OptionList, "_index_to_line", None) is None:
        raise TextualChanged(f"tui/compat.py: Textual {textual.__version__}: OptionList._index_to_line "
                             "is gone; check the _move_page patch against this Textual")
    # it pops whatever screen is on top, not the one it is called on
    dismiss = require(Screen, "dismiss", ("self", "result"), reads=("pop_screen",))
    require(AwaitComplete, "nothing", ("cls",))
    watch = require(CommandPalette, "_watch__list_visible", ("self",), reads=("query_one",))
    # a MouseDown starts a selection in the pressed widget's container and reads its region
    forward = require(Screen, "_forward_event", ("self", "event"), reads=("MouseDown", "region"))

    def _move_page(self, direction):
        lines = self._index_to_line
        if isinstance(lines, Mapping) and (self.highlighted or 0) not in lines:
            return  # not laid out yet
        move_page(self, direction)

    OptionList._move_page = _move_page  # type: ignore[method-assign]  # the patch this module makes

    def _dismiss(self, result=None):
        try:
            on_top = self.app.screen is self
        except Exception:  # noqa: BLE001 - no app or an empty stack: nothing to pop
            on_top = False
        if not on_top:
            return AwaitComplete.nothing()
        return dismiss(self, result)

    _dismiss.__doc__ = dismiss.__doc__
    Screen.dismiss = _dismiss  # type: ignore[method-assign]  # the patch this module makes

    def _watch__list_visible(self):
        with contextlib.suppress(NoMatches):  # the palette is closing: its list is gone
            watch(self)

    CommandPalette._watch__list_visible = _watch__list_visible  # type: ignore[method-assign]  # the patch this module makes

    def _forward_event(self, event):
        try:
            return forward(self, event)
        except AttributeError as e:
            if isinstance(event, events.MouseDown) and "'region'" in str(e):
                return None  # the widget under the pointer is gone: nothing to select
            raise

    Screen._forward_event = _forward_event  # type: ignore[method-assign]  # the patch this module makes
    _applied = True
