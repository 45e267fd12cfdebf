# SPDX-License-Identifier: GPL-2.0-only
"""The TUI monkey (tests/tui_monkey.py), bounded: random keys, clicks and
resizes through the pilot on the demo and on kbuild (137 ops, the largest
built-in by op count, forks and exits), then the session is checked against
a fresh run. No exception may escape, the app may not stop or get stuck on a
screen, and the session must be exactly where the UI says it is.

Each storm is seeded, but the interleaving of keys and the session's
background jobs depends on timing, so two runs of one seed do not see the
same states; every run explores a little more. A longer campaign:

    python scripts/fuzz.py tui --events 20000 --seed 7 [--target kbuild]

The storms run with asyncio's debug mode off (under ``-X dev`` it records a
stack for every callback and triples Textual's cost per event); the first
demo storm keeps it on, so its checks (e.g. loop calls from a worker thread)
still see random input. Four storms, 1600 events, about 100 s of CPU
(split so that pytest-xdist spreads them); PTLAB_MONKEY_SCALE=10 runs ten
times as many.
"""

from __future__ import annotations

import asyncio
import os

import pytest
from tui_monkey import monkey

SCALE = float(os.environ.get("PTLAB_MONKEY_SCALE", 1))

STORMS = [  # (target, seed, events, asyncio debug)
    ("demo", 1, 100, True),
    ("demo", 2, 500, False),
    ("demo", 3, 500, False),
    ("kbuild", 4, 500, False),
]


@pytest.mark.parametrize(("target", "seed", "events", "debug"), STORMS,
                         ids=[f"{t}-{s}" for t, s, _, _ in STORMS])
def test_monkey(target, seed, events, debug, tmp_path, monkeypatch, report_line):
    monkeypatch.chdir(tmp_path)  # Ctrl-S and the save dialog write to the current directory
    n = max(1, int(events * SCALE))
    res = asyncio.run(monkey(target, n, seed), debug=debug)
    assert sum(res.events.values()) == n
    report_line(f"tui monkey: {res.summary()}{' (asyncio debug)' if debug else ''}, 0 failures")


# --- what the monkey found (each fixed in tui/, see tui/compat.py) -----------------------------

def _run_app(target: str, body) -> None:  # type: ignore[no-untyped-def]
    from tui_support import settle

    from tui.app import PtlabApp
    from tui.targets import open_target

    async def main() -> None:
        app = PtlabApp(open_target(target), use_keymap=False)
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(app, pilot)
            await body(app, pilot)
            await settle(app, pilot)
            assert app.is_running
            assert app.main.ctl.errors == []

    asyncio.run(main())


def test_page_keys_in_the_command_palette_before_it_is_laid_out():
    """PageDown right after Ctrl-P raised KeyError in Textual's OptionList and ended the app."""
    from tui_monkey import _key

    async def body(app, pilot):  # type: ignore[no-untyped-def]
        for key in ("ctrl+p", "pagedown", "pageup", "pagedown"):
            _key(app, key)  # as a terminal sends them: no wait for a redraw in between
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is app.main

    _run_app("demo", body)


def test_a_second_enter_queued_for_a_closing_dialog_does_not_close_the_main_screen(tmp_path, monkeypatch):
    """Screen.dismiss() pops the top screen, whoever calls it: a second Enter (or Esc) that the
    dialog still had in its queue popped the main screen, and the app ended."""
    from tui_monkey import _key
    from tui_support import settle

    monkeypatch.chdir(tmp_path)

    async def body(app, pilot):  # type: ignore[no-untyped-def]
        for keys in (("g", "1", "enter", "enter"), ("ctrl+o", "enter", "enter"), ("d", "enter", "enter"),
                     ("question_mark", "escape", "escape"), ("ctrl+s", "escape", "escape")):
            for key in keys:
                _key(app, key)
            await settle(app, pilot)
            while app.screen is not app.main and app.is_running:  # (the comparison)
                await pilot.press("escape")
                await settle(app, pilot)
            assert app.screen is app.main, keys

    _run_app("demo", body)


def test_dismiss_from_a_screen_below_the_top_is_a_no_op():
    from textual.screen import Screen

    async def body(app, pilot):  # type: ignore[no-untyped-def]
        lower, upper = Screen(), Screen()
        await app.push_screen(lower)
        await app.push_screen(upper)
        await lower.dismiss()
        assert app.screen is upper and lower in app.screen_stack
        await upper.dismiss()
        await lower.dismiss()
        assert app.screen is app.main

    _run_app("demo", body)


def test_two_comparisons_asked_for_in_a_row_open_one_screen():
    from tui_support import settle

    from tui.screens.side_by_side import CompareScreen

    async def body(app, pilot):  # type: ignore[no-untyped-def]
        app.main.compare_with(policy="never")
        app.main.compare_with(policy="never")
        await settle(app, pilot)
        assert sum(isinstance(s, CompareScreen) for s in app.screen_stack) == 1
        assert any("already open" in m for m in map(str, app.main.messages))
        await pilot.press("escape")
        await settle(app, pilot)
        assert app.screen is app.main

    _run_app("demo", body)


def test_a_comparison_step_that_ends_after_the_screen_closed():
    """The step's result reached a CompareScreen that Esc had already taken off the stack."""
    from tui_monkey import _key
    from tui_support import settle

    from tui.screens.side_by_side import CompareScreen

    async def body(app, pilot):  # type: ignore[no-untyped-def]
        app.main.compare_with(policy="never")
        await settle(app, pilot)
        cmp = app.screen
        assert isinstance(cmp, CompareScreen)
        for key in ("n", "n", "escape", "escape"):
            _key(app, key)
        await settle(app, pilot)
        assert app.screen is app.main
        cmp.show(cmp.res)  # a late result is dropped, not drawn into a detached screen

    _run_app("demo", body)


def test_a_palette_search_that_ends_while_the_palette_is_taken_down():
    """Found by the long campaign (scripts/fuzz.py tui, seed 9, event 1224): the search worker's
    last refresh found the palette's CommandList already removed; NoMatches ended the app. The
    race is rare; this sets up the state it left behind and lets the worker's last step run."""
    from textual.command import CommandList, CommandPalette
    from tui_support import settle

    async def body(app, pilot):  # type: ignore[no-untyped-def]
        await pilot.press("ctrl+p")
        await settle(app, pilot)
        pal = app.screen
        assert isinstance(pal, CommandPalette)
        await pal.query_one(CommandList).remove()
        pal._list_visible = not pal._list_visible  # what _refresh_command_list does last
        await pilot.pause()
        await pilot.press("escape")
        await settle(app, pilot)
        assert app.screen is app.main

    _run_app("demo", body)


def test_a_press_on_a_widget_removed_since_the_last_layout():
    """Found by the long campaign (scripts/fuzz.py tui, seeds 35 and 41, demo): a mouse press
    on a widget that had just been removed began a text selection in its parent, which was
    None; Textual's AttributeError ended the app. The press is now dropped."""
    from textual.events import MouseDown
    from textual.pilot import _get_mouse_message_arguments
    from textual.widgets import Static
    from tui_support import settle

    async def body(app, pilot):  # type: ignore[no-untyped-def]
        await pilot.press("v")  # the decode dialog: a Static with its hint text
        await settle(app, pilot)
        dialog = app.screen
        hint = dialog.query(Static).last()
        region = hint.region
        await hint.parent.remove()  # gone from the DOM; the compositor's map is not redone yet
        args = _get_mouse_message_arguments(dialog, (region.x + 1, region.y), button=1)
        dialog._forward_event(MouseDown(**args))
        await pilot.press("escape")
        await settle(app, pilot)
        assert app.screen is app.main

    _run_app("demo", body)


def test_two_dialog_keys_faster_than_a_redraw_open_one_dialog():
    """Found by the long campaign (seed 35, demo): two ctrl+b queued before the first dialog
    was up both reached the main screen; the second BreakpointDialog had the same id and
    DuplicateIds ended the app. Every dialog key now opens nothing while another is up."""
    from tui_monkey import _key
    from tui_support import settle

    async def body(app, pilot):  # type: ignore[no-untyped-def]
        for keys in (("ctrl+b", "ctrl+b"), ("x", "x"), ("v", "v"), ("ctrl+s", "ctrl+o"), ("g", "a"),
                     ("question_mark", "f1")):
            for k in keys:
                _key(app, k)  # as the terminal sends them: no wait in between
            await settle(app, pilot)
            assert len(app.screen_stack) == 3, (keys, app.screen_stack)  # default, main, one dialog
            await pilot.press("escape")
            await settle(app, pilot)
            assert app.screen is app.main

    _run_app("demo", body)
