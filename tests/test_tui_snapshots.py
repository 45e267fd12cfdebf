# SPDX-License-Identifier: GPL-2.0-only
"""SVG snapshots of the TUI (pytest-textual-snapshot). Deterministic: fixed
terminal sizes, the built-in example trace, no clocks, notifications
cleared, every background job settled before the picture is taken.

Review a change with ``python -m pytest tests/test_tui_snapshots.py`` (the
HTML report shows the diff) and accept it with ``--snapshot-update``."""

from __future__ import annotations

from tui_support import VA, settle

from engine.session import Position
from tui.app import PtlabApp
from tui.targets import open_target


def _app() -> PtlabApp:
    return PtlabApp(open_target("example"), use_keymap=False)


def _prepare(app: PtlabApp, *, position: Position | None = None, addr: int | None = None,
             breakpoint: str | None = None, zoom: int = 0, compare_policy: str | None = None):
    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        await settle(app, pilot)
        main = app.main
        if breakpoint is not None:
            main.add_breakpoint(breakpoint)
            await settle(app, pilot)
            main.action_continue_run()
            await settle(app, pilot)
        if position is not None:
            main.seek(position)
            await settle(app, pilot)
        if addr is not None:
            main.go_to_address(addr)
            await settle(app, pilot)
        if zoom:
            main.action_zoom(zoom)
            await settle(app, pilot)
        if compare_policy is not None:
            main.compare_with(policy=compare_policy)
            await settle(app, pilot)
            await pilot.pause()
        app.clear_notifications()
        await pilot.pause()

    return run_before


def test_main_screen_120x40_mid_convert(snap_compare):
    """Inside contpte_convert: the break-before-make zeros (○) of the block being folded."""
    app = _app()
    assert snap_compare(app, terminal_size=(120, 40),
                        run_before=_prepare(app, position=Position(18, 34), addr=VA + 0x10000))


def test_main_screen_200x60_at_the_end(snap_compare):
    app = _app()
    assert snap_compare(app, terminal_size=(200, 60),
                        run_before=_prepare(app, position=Position(42), addr=VA + 0x17000))


def test_inspector_on_a_cont_entry(snap_compare):
    app = _app()
    assert snap_compare(app, terminal_size=(120, 40),
                        run_before=_prepare(app, position=Position(42), addr=VA + 0x43000,
                                            breakpoint="block:0x7f0000040000"))


def test_comparison_screen(snap_compare):
    app = _app()
    assert snap_compare(app, terminal_size=(120, 40), run_before=_prepare(app, compare_policy="never"))


def test_main_screen_80x24(snap_compare):
    """80x24: the address space folds away and one 16-entry block fits a grid row."""
    app = PtlabApp(open_target("demo"), use_keymap=False)
    assert snap_compare(app, terminal_size=(80, 24), run_before=_prepare(app, position=Position(4)))


def test_inspector_with_block_history(snap_compare):
    """demo at the end, cursor on the heap's first block: verdict, then its folds and unfolds."""
    app = PtlabApp(open_target("demo"), use_keymap=False)
    assert snap_compare(app, terminal_size=(120, 60),
                        run_before=_prepare(app, position=Position(50), addr=0xFFFFF7FC0000))


def test_comparison_screen_with_a_cursor(snap_compare):
    """The cursor moved to the second differing entry: both sides and the decoded pair follow it."""
    app = _app()

    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        await _prepare(app, compare_policy="never")(pilot)
        await pilot.press("full_stop")
        await settle(app, pilot)
        app.clear_notifications()
        await pilot.pause()

    assert snap_compare(app, terminal_size=(120, 40), run_before=run_before)


def test_comparison_screen_80x24_with_a_cursor(snap_compare):
    """80x24: both grids, the header's two divergences and the decoded pair still fit."""
    app = _app()

    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        await _prepare(app, compare_policy="never")(pilot)
        await pilot.press("full_stop")
        await settle(app, pilot)
        app.clear_notifications()
        await pilot.pause()

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_comparison_inspector_of_the_pair(snap_compare):
    """i on the comparison: the inspector of the entry under the cursor, A beside B."""
    app = _app()

    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        await _prepare(app, compare_policy="never")(pilot)
        await pilot.press("i")
        await settle(app, pilot)
        app.clear_notifications()
        await pilot.pause()

    assert snap_compare(app, terminal_size=(120, 40), run_before=run_before)
