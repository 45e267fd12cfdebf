# SPDX-License-Identifier: GPL-2.0-only
"""Scaling of the PTE grid with 1 GiB mapped: only visible rows are built,
a step rebuilds no off-screen row and repaints only rows that changed,
summaries are per PTE table and survive steps that do not touch them.
(Latency itself is measured by tests/perf_tui.py, by hand: timing
assertions would make the suite flaky on a busy machine.)"""

from __future__ import annotations

import asyncio

from perf_tui import VA, big_session, measure
from tui_support import settle

from engine.session import Position
from tui.app import PtlabApp
from tui.grid_model import GridModel


def test_a_step_with_1gib_mapped_rebuilds_at_most_the_changed_rows():
    s = big_session(1 << 30, 12)
    out = asyncio.run(measure(s, 4))
    assert max(out["rows_built"]) <= 4  # the cursor row, changed rows; never the whole pane
    assert all(t < 5.0 for t in out["frame done"])
    _far_scroll(s)


def test_grid_model_over_1gib_builds_rows_lazily():
    s = big_session(1 << 30, 2)
    m = GridModel(s.machine, width=60)
    assert m.n_rows == 1 + (1 << 30) // 0x10000  # a header + one row per 64K block
    assert m.row_text(m.n_rows - 1).startswith(f" {VA + (1 << 30) - 0x10000:012x}")
    assert not m._tcache  # no summary computed for zoom 0 rows
    m.set_zoom(3)  # 4096 PTEs per cell: summaries per PTE table, computed once
    for r in range(m.n_rows):
        m.cells(r)
    assert len(m._tcache) == 512
    cached = dict(m._tcache)
    from tui.controller import do_step

    res = do_step(s, "op")
    m.set_view(res.view, res.dirty)
    kept = sum(1 for k, v in cached.items() if m._tcache.get(k) is v)
    assert kept >= 511  # only the written table was dropped


def _far_scroll(s) -> None:  # type: ignore[no-untyped-def]
    async def main() -> None:
        app = PtlabApp(s, use_keymap=False)
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(app, pilot)
            grid = app.main.grid
            before = grid.renders
            await pilot.press("end")
            await settle(app, pilot)
            assert grid.cursor_addr == VA + (1 << 30) - 0x1000
            assert grid.renders - before <= grid.size.height + 2
            app.main.seek(Position(1))
            await settle(app, pilot)
            assert grid.cursor_addr == VA + (1 << 30) - 0x1000

    asyncio.run(main())
