# SPDX-License-Identifier: GPL-2.0-only
"""The PTE grid's content as plain data, without an app (like memray's graph
tests): glyphs and tags per row at a session position, CONT joins, folio
boundaries, changed cells, mid-op transient zeros, the summarising zoom, 16K
wrapping, VMAs, and incremental summary invalidation."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tui_support import VA, api_session, folio, ptep, vector_session

from engine.ops import Op
from engine.pte import PAGE_SHARED, pte_mkdirty
from engine.session import Position
from tui import legend
from tui.controller import do_step, gather
from tui.grid_geometry import GUTTER
from tui.grid_model import GridModel, ViewState
from tui.grid_regions import Region, regions_of
from tui.grid_summaries import Summary
from tui.legend import PRIORITY, RANK

PFN = 0x80000


def walk_op(addr: int, write: bool = True) -> Op:
    return Op("walk", {"addr": addr, "write": write}, 0, "walk")


def _pte(pfn: int, prot: int = PAGE_SHARED) -> int:
    return (pfn << 12) | prot


def cells_text(model: GridModel, row: int) -> str:
    """Only the cell glyphs and joiners of a data row."""
    return model.row_text(row)[GUTTER + 1: GUTTER + 1 + model.cell_width * model.cells_per_row - model.sep]


def data_rows(model: GridModel) -> list[int]:
    return [r for r in range(model.n_rows) if model.row_info(r).kind == "data"]


def model_at_end(session, width: int = 60) -> GridModel:
    session.run()
    m = GridModel(session.machine, width=width)
    m.set_view(gather(session, session.position).view, None)
    return m


# --- the legend table --------------------------------------------------------------------
def test_legend_table_is_complete_and_glyphs_are_distinct():
    names = [s.name for s in legend.STATES]
    assert set(names) == set(PRIORITY)
    glyphs = [s.glyph for s in legend.STATES if s.name != "outside"]
    assert len(glyphs) == len(set(glyphs)), "each state needs its own glyph (colour is not enough)"
    css = legend.tcss("PteGrid", "ptegrid")
    for s in legend.STATES:
        assert f".ptegrid--{s.name}" in css
    for m in legend.MARKS:
        assert f".ptegrid--{m.name}" in css


def test_legend_bar_is_drawn_from_the_table():
    from tui.widgets.legend_bar import legend_segments

    segs = legend_segments()
    shown = {name for _, name, _ in segs}
    assert {s.name for s in legend.STATES if s.name != "outside"} <= shown
    for sample, name, label in segs:
        if name in legend.BY_NAME:
            assert sample.startswith(legend.BY_NAME[name].glyph)
            assert label == legend.BY_NAME[name].label


def test_classify_every_state():
    from engine.pte import LAYOUTS, PAGE_NONE, PAGE_READONLY, pte_mkold, pte_mkspecial

    lay = LAYOUTS["v6.18"]
    c = legend.classify
    assert c(0, lay) == "none"
    assert c(pte_mkold(_pte(1, PAGE_READONLY)), lay) == "valid"
    assert c(pte_mkold(_pte(1)), lay) == "writable"
    assert c(_pte(1), lay) == "young"
    assert c(pte_mkdirty(_pte(1)), lay) == "dirty"
    assert c(pte_mkspecial(_pte(1, PAGE_READONLY)), lay) == "special"
    assert c(_pte(1, PAGE_NONE), lay) == "protnone"
    assert c(lay.swp_entry_to_pte(0, 5), lay) == "swap"
    assert c(lay.swp_entry_to_pte(27, 5), lay) == "migration"
    assert c(0x2, lay) == "bad"


# --- rows at zoom 0 ------------------------------------------------------------------------
def test_cont_block_is_bracketed_upper_case_and_joined():
    s = api_session([folio(PFN, 16), ptep("set_ptes", VA, _pte(PFN), 16)])
    m = model_at_end(s)
    row, col = m.locate(VA)
    assert col == 0
    text = m.row_text(row)
    assert f"{VA:012x}" in text
    assert "[" + "━".join("Y" * 16) + "]" in text
    tags = [t for _, t in m.row_segments(row) if t and t[0] == "young"]
    assert len(tags) == 16 and all("cont" in t for t in tags)
    # the changed highlight: all 16 were written by the last op
    assert all("changed" in t for t in tags)
    assert "*16" in text


def test_folio_boundaries_are_drawn_between_cells():
    ops = [folio(PFN, 8), folio(PFN + 8, 8),
           ptep("set_ptes", VA, _pte(PFN), 8), ptep("set_ptes", VA + 8 * 4096, _pte(PFN + 8), 8)]
    m = model_at_end(api_session(ops))
    row, _ = m.locate(VA)
    cells = cells_text(m, row)
    assert cells == " ".join("y" * 8) + "│" + " ".join("y" * 8)


def test_order0_pages_draw_no_boundaries():
    ops = [ptep("set_ptes", VA + i * 4096, _pte(PFN + 3 * i), 1) for i in range(4)]
    m = model_at_end(api_session(ops))
    row, _ = m.locate(VA)
    assert "│" not in cells_text(m, row)
    assert cells_text(m, row).startswith("y y y y ·")


def test_cursor_tag_marks_one_cell():
    s = api_session([folio(PFN, 16), ptep("set_ptes", VA, _pte(PFN), 16)])
    m = model_at_end(s)
    row, _ = m.locate(VA + 3 * 4096)
    segs = m.row_segments(row, cursor_col=3)
    marked = [i for i, (_, t) in enumerate(segs) if "cursor" in t]
    assert len(marked) == 1
    assert m.cell_addr(row, 3) == VA + 3 * 4096
    assert m.locate(m.cell_addr(row, 3)) == (row, 3)


def test_mid_op_transient_zeros_are_visible():
    """Stepping event by event through a fold shows the break-before-make zeros."""
    ops = [folio(PFN, 16)] + [ptep("set_ptes", VA + i * 4096, _pte(PFN + i), 1) for i in range(16)]
    s = api_session(ops)
    s.run(until=16)  # the 16th single-entry write folds the block
    events = s.events_of(16)
    assert any(e[0] == "convert" for e in events)
    m = GridModel(s.machine, width=60)
    seen_cleared = False
    while s.k == 16:
        do_step(s, "event")
        if s.k != 16:
            break
        m.set_view(gather(s, s.position).view, set())
        row, _ = m.locate(VA)
        states = [c.state for c in m.cells(row)]
        if "cleared" in states:
            seen_cleared = True
            assert "○" in m.row_text(row)
            # the live table (op start) still holds the old value: the overlay shows the zero
            addr = next(c.addr for c in m.cells(row) if c.state == "cleared")
            assert m.raw(addr) == 0 and m.live(addr) != 0
    assert seen_cleared
    m.set_view(gather(s, s.position).view, None)
    row, _ = m.locate(VA)
    assert cells_text(m, row) == "━".join("Y" * 16)


def test_16k_blocks_wrap_with_a_bracket_in_the_gutter():
    s = vector_session(4)  # 16K, v6.9
    m = model_at_end(s, width=100)
    assert m.cont_ptes == 128
    assert m.cells_per_row == 32 and m.rows_per_block == 4
    rows = data_rows(m)[:4]
    brackets = [m.row_text(r)[GUTTER - 1] for r in rows]
    assert brackets == ["┌", "│", "│", "└"]
    narrow = GridModel(s.machine, width=50)
    assert narrow.cells_per_row < 32 and narrow.row_width <= 60


def test_regions_from_vmas_when_the_process_has_them():
    s = api_session([folio(PFN, 16), ptep("set_ptes", VA, _pte(PFN), 16)])
    s.run()
    proc = s.machine.process_list()[0]
    fake = SimpleNamespace(name="mm", mm=proc.mm, alive=True, regions={}, vmas=[
        SimpleNamespace(name="heap", start=VA, end=VA + 0x20000, prot="rw", anon=True, shared=False),
        SimpleNamespace(name="lib", start=VA + 0x100000, end=VA + 0x108000, prot="r", anon=False,
                        shared=False)])
    regs = regions_of(fake, s.machine.arch.g)
    assert [r.name for r in regs] == ["heap", "lib"]
    assert regs[0].detail == "rw anon private"

    class M:
        arch = s.machine.arch

        def process_list(self):
            return [fake]

    m = GridModel(M(), width=80)
    assert m.row_info(0).kind == "header" and "heap" in m.row_text(0)
    # the lib VMA covers half a block: the rest of its row is drawn as outside
    row, _ = m.locate(VA + 0x100000)
    cells = m.cells(row)
    assert [c.state for c in cells[8:]] == ["outside"] * 8
    assert m.locate(VA + 0x80000) is None  # between VMAs


def test_derived_regions_merge_adjacent_tables():
    g = SimpleNamespace(pmd_shift=21)
    pt = SimpleNamespace(tables={10: None, 11: None, 13: None}, pmd_leaves={})
    regs = regions_of(SimpleNamespace(mm=SimpleNamespace(pt=pt), vmas=None), g)
    assert [(r.start >> 21, r.end >> 21) for r in regs] == [(10, 12), (13, 14)]
    assert all(isinstance(r, Region) and r.kind == "mapped" for r in regs)


# --- the summarising zoom --------------------------------------------------------------------
def brute_summary(m: GridModel, start: int, n: int) -> tuple[str, bool]:
    vals = [m.raw(start + i * m.page_size) for i in range(n)]
    states = [m.state_of(start + i * m.page_size, v) for i, v in enumerate(vals)]
    best = min(states, key=lambda x: RANK[x])
    valid = [v for v in vals if v & 1]
    return best, bool(valid) and all(v >> 52 & 1 for v in valid)


@pytest.mark.parametrize("index", [1, 8, 12])  # 4K, 64K, 16K traces
def test_zoomed_cells_show_the_most_interesting_state(index):
    s = vector_session(index)
    m = model_at_end(s)
    for zoom in (1, 2):
        m.set_zoom(zoom)
        for r in data_rows(m):
            for c in m.cells(r):
                if c.outside:
                    continue
                assert (c.state, c.cont) == brute_summary(m, c.addr, c.span), (zoom, hex(c.addr))


def test_one_dirty_entry_dominates_a_zoomed_cell():
    ops = [folio(PFN, 16), ptep("set_ptes", VA, _pte(PFN), 16), walk_op(VA + 5 * 4096)]
    m = model_at_end(api_session(ops))
    m.set_zoom(1)
    row, col = m.locate(VA)
    cell = m.cells(row)[col]
    assert cell.state == "dirty" and cell.cont and cell.span == 16
    assert m.row_text(row)[GUTTER + 1 + m.cell_width * col] == "D"


@given(st.lists(st.sampled_from(["none", "valid", "writable", "young", "dirty", "special", "swap",
                                 "protnone", "migration"]), min_size=1, max_size=40))
def test_summary_addition_keeps_the_priority_order(states):
    total = Summary(RANK["outside"])
    for x in states:
        total = total + Summary(RANK[x], 1, 1, 0, 1)
    assert total.state() == min(states, key=lambda x: PRIORITY.index(x))
    assert total.total == len(states)


# --- incremental invalidation ------------------------------------------------------------------
def test_set_view_recomputes_only_dirty_tables():
    s = vector_session(1)
    s.run(until=20)
    m = GridModel(s.machine, width=60)
    m.set_zoom(2)
    for r in data_rows(m):
        m.cells(r)
    cached = dict(m._tcache)
    assert cached
    before = s.position
    res = do_step(s, "op")
    assert res.dirty is not None  # one op: the writes are known
    m.set_view(res.view, res.dirty)
    dirty_keys = {a >> m.pmd_shift for _, a in res.dirty}
    for key, ts in cached.items():
        if key not in dirty_keys:
            assert m._tcache.get(key) is ts  # kept
    fresh = GridModel(s.machine, width=60)
    fresh.set_zoom(2)
    fresh.set_view(res.view, None)
    for r in data_rows(m):
        assert m.row_text(r) == fresh.row_text(r)
    assert s.position == Position(before.op + 1)


def test_gather_reports_unknown_dirty_for_far_jumps():
    s = vector_session(1)
    s.run(until=10)
    before = s.position
    s.seek(2)
    assert gather(s, before).dirty is None
    before = s.position
    s.step("event")
    assert gather(s, before).dirty == set()  # same op boundary: live tables unchanged


def test_view_of_another_process_is_ignored():
    s = api_session([folio(PFN, 16), ptep("set_ptes", VA, _pte(PFN), 16)])
    m = model_at_end(s)
    m.set_view(ViewState({("other", VA): 0}, {("other", VA)}), set())
    row, _ = m.locate(VA)
    assert not any(c.changed for c in m.cells(row))
    assert m.raw(VA) != 0


def test_wide_panes_space_the_cells_out_and_clicks_map_back():
    s = api_session([folio(PFN, 8), folio(PFN + 8, 8), ptep("set_ptes", VA, _pte(PFN), 8),
                     ptep("set_ptes", VA + 8 * 4096, _pte(PFN + 8), 8)])
    m = model_at_end(s, width=120)
    assert m.sep == 3 and m.row_width <= 120
    row, _ = m.locate(VA)
    cells = cells_text(m, row)
    assert cells == "   ".join("y" * 8) + " │ " + "   ".join("y" * 8)
    for col in (0, 7, 8, 15):
        x = GUTTER + 1 + col * m.cell_width
        assert m.col_at(x) == col and m.row_text(row)[x] == "y"


def test_pmd_leaves_show_as_huge_page_cells():
    from engine.pte import PAGE_READONLY

    s = api_session([folio(PFN, 16), ptep("set_ptes", VA, _pte(PFN), 16)])
    s.run()
    pt = s.machine.sim.mm.pt
    pmd_va = VA + (2 << 20)
    pt.set_pmd(pmd_va, ((0x100000 << 12) | PAGE_READONLY) & ~2)  # a block descriptor (type 0b01)
    m = GridModel(s.machine, width=60)
    assert [r.start for r in m.regions] == [VA, ]  # one merged range: VA .. VA + 4M
    assert m.regions[0].end == VA + (4 << 20)
    row, _ = m.locate(pmd_va)
    assert cells_text(m, row) == " ".join("H" * 16)
    m.set_zoom(2)
    row, col = m.locate(pmd_va)
    assert m.cells(row)[col].state == "pmd"
    from tui.inspect_model import inspect, plain

    m.set_zoom(0)
    assert "PMD leaf for 0x7f0000200000-0x7f0000400000" in plain(inspect(m, pmd_va))


def test_row_signature_changes_exactly_when_the_row_may_change():
    """The grid skips rebuilding rows whose signature is unchanged: check it over
    every event of a fold (transient zeros) and over folio changes."""
    ops = [folio(PFN, 16)] + [ptep("set_ptes", VA + i * 4096, _pte(PFN + i), 1) for i in range(16)]
    s = api_session(ops)
    s.run(until=16)
    m = GridModel(s.machine, width=60)
    row, _ = m.locate(VA)
    seen: dict[tuple, str] = {}
    while True:
        m.set_view(gather(s, s.position).view, None)
        sig, text = m.row_signature(row), m.row_text(row)
        assert seen.setdefault(sig, text) == text  # same signature -> same row
        if s.at_end:
            break
        do_step(s, "event")
    before = m.row_signature(row)
    s.machine.sim.folios.remove(PFN)  # folio registry changes: the signature must too
    assert m.row_signature(row) != before
