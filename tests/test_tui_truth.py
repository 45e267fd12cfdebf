# SPDX-License-Identifier: GPL-2.0-only
"""The TUI tells the truth about the position you are looking at (issue 14):
one regression test per wrong answer it used to give."""

from __future__ import annotations

import asyncio

import pytest
from tui_support import press, run, settle

from engine import Simulator
from engine.explain import explain_block
from engine.policy import load_policy
from engine.pte import PAGE_SHARED
from tui.targets import open_target

VA = 0x7F0000000000


# 1. the explainer's verdict comes from the fold policy in force ---------------------------------
def _foldable_block(policy: str | None) -> Simulator:
    sim = Simulator(granule=4096, kernel="v7.0")
    sim.add_folio(0x80000, 16)
    sim.ptep.__set_ptes(VA, sim.pte.pfn_pte(0x80000, PAGE_SHARED), 16)  # raw: no fold attempt
    sim.arch.fold_policy = None if policy is None else load_policy(policy)
    return sim


def test_explainer_note_follows_the_policy(tmp_path):
    notes = {}
    for pol in (None, "never", "any-entry", "scan"):
        ex = explain_block(_foldable_block(pol).arch, _foldable_block(pol).mm, VA)
        assert ex.foldable and not ex.folded
        notes[pol] = ex.notes[0]
    assert "only tries to fold when entry 15 is written" in notes[None]
    assert notes["never"].startswith("policy never: set_ptes(nr == 1) never tries to fold")
    assert "policy any-entry tries to fold after any set_ptes(nr == 1)" in notes["any-entry"]
    assert "scans every 8 ops: the next scan folds it" in notes["scan"]
    for pol in ("never", "any-entry", "scan"):
        assert "entry 15 is written by set_ptes(nr == 1); no such write" not in notes[pol]
    f = tmp_path / "first_entry.py"
    f.write_text("class FirstEntry:\n    name = 'first-entry'\n"
                 "    def should_try_fold(self, arch, mm, addr, pte):\n"
                 "        return (addr >> arch.page_shift) % arch.cont_ptes == 0 and bool(pte & 1)\n")
    sim = _foldable_block(f"{f}:FirstEntry")
    note = explain_block(sim.arch, sim.mm, VA).notes[0]
    assert "policy first-entry would try to fold when entry 0 is written" in note


def test_tui_explainer_names_the_policy():
    s = open_target("check-08-mprotect-one-page", policy="never")

    async def body(app, pilot):
        main = app.main
        await press(app, pilot, *"nnnnnn")  # after the mprotect back to rw: foldable, not folded
        main.go_to_address(next(r.start for r in main.model.regions if r.name == "mid"))
        await settle(app, pilot)
        text = main.inspector.text
        assert "foldable ◇" in text
        assert "policy never: set_ptes(nr == 1) never tries to fold" in text
        assert "only tries to fold when entry 15" not in text

    run(s, body)


# 2. inside an op, the folio and the verdict are those of the exact event -------------------------
def test_inspector_mid_op_shows_the_state_at_the_event():
    s = open_target("page-fault3", kernel="v6.9")
    s.add_breakpoint("event:fold")

    async def body(app, pilot):
        main = app.main
        await press(app, pilot, "c")
        assert s.position.event > 0
        fold_addr = main.last_result.hit.event[1]
        main.go_to_address(fold_addr)
        await settle(app, pilot)
        text = main.inspector.text
        assert "folded ✓" in text, text
        assert "16 pages (order 4" in text
        assert "mapcount  16" in text
        assert "entry 0 is none" not in text
        assert "verdict at the op's start" not in text
        # the grid's folio order is the exact event's too (o4, not the op start's order-0 page)
        row, _ = main.model.locate(fold_addr)
        assert "] o4" in main.model.row_text(row)
        # the live machine is back at the op's start (the grid's overlay shows the rest)
        assert s.machine.digest() == _digest_at_op_start(s)

    run(s, body)


def _digest_at_op_start(s) -> str:  # type: ignore[no-untyped-def]
    other = open_target("page-fault3", kernel="v6.9")
    other.seek(s.position.op)
    return other.machine.digest()


# 3. zoomed out, a cell summarises only the entries of its own range ------------------------------
def test_zoomed_cells_count_only_their_own_range():
    from tui.grid_model import GridModel
    from tui.inspect_model import inspect, plain

    s = open_target("demo")
    s.run()
    m = GridModel(s.machine, width=100)
    pt = m._proc().mm.pt
    ps = m.page_size
    for zoom in (1, 2, 3):
        m.set_zoom(zoom)
        checked = 0
        for row in range(m.n_rows):
            info = m.row_info(row)
            if info is None or info.kind != "data":
                continue
            r = info.region
            for c in m.cells(row):
                if c.outside:
                    continue
                lo, hi = max(c.addr, r.start), min(c.addr + m.cell_bytes, r.end)
                vals = [pt.get(a) for a in range(lo, hi, ps)]
                assert c.summary is not None
                assert (c.summary.total, c.summary.present) == (len(vals), sum(1 for v in vals if v)), (
                    zoom, r.name, hex(c.addr))
                checked += 1
        assert checked >= 7  # every range has at least one cell
    # the heap's swap entries are not shown in the file and buf rows at x256
    m.set_zoom(2)
    for row in range(m.n_rows):
        info = m.row_info(row)
        if info is not None and info.kind == "data" and info.region.name in ("log", "buf"):
            assert "s" not in m.row_text(row)[15:60]
    buf = next(r for r in m.regions if r.name == "buf")
    text = plain(inspect(m, buf.start & ~(m.cell_bytes - 1), region=buf))
    assert f"{buf.size // ps} PTEs" in text and "zoom in (+)" in text


# 4. the ◇ foldable mark of the legend is drawn in the grid ---------------------------------------
def test_grid_marks_foldable_blocks():
    from tui.grid_model import GridModel

    s = open_target("check-08-mprotect-one-page")
    s.seek(6)  # mid: mprotected back to rw, foldable but not folded; last: folded
    m = GridModel(s.machine, width=100)
    rows = {m.row_info(r).region.name: m.row_segments(r) for r in range(m.n_rows)
            if m.row_info(r).kind == "data"}
    assert ("◇", ("foldable",)) in rows["mid"]
    assert not any(t == "◇" for t, _ in rows["last"])
    s.seek(5)  # mid has a read-only page: not foldable
    m = GridModel(s.machine, width=100)
    assert not any("◇" in m.row_text(r) for r in range(m.n_rows))


# 5. after Esc interrupts a long back-step, every pane shows the same position --------------------
BIG = "memory 512M\nmmap a 64K\ntouch a write\nmmap buf 256M\ntouch buf write\nmunmap a\n"


@pytest.mark.parametrize("checkpointed", [False, True])
def test_interrupted_back_step_leaves_one_position_everywhere(tmp_path, monkeypatch, checkpointed):
    """Without a checkpoint after the long op, the back-step itself replays it; with one,
    the step lands at once and the view of the new position (the events of the long op,
    for the changed cells) is what Esc interrupts."""
    import threading

    from engine.mm.base import MmContext as Kernel
    from engine.scenario_machine import Machine

    (tmp_path / "big.pts").write_text(BIG)
    s = open_target(str(tmp_path / "big.pts"))
    if not checkpointed:
        s.checkpoint_events = 1 << 40  # no checkpoint after the long op: stepping back replays it
    s.run()
    assert s.at_end and sorted(s.checkpoints) == ([0, 4] if checkpointed else [0])
    s._events_cache.clear()  # (as after a long session: the long op's events are not at hand)
    s._events_cached = 0
    held, released = threading.Event(), threading.Event()
    polls = {"in_op": 0, "armed": False}
    poll = Kernel.poll_interrupt

    def holding_poll(self):  # type: ignore[no-untyped-def]
        if polls["armed"] and s.k == 3 and not released.is_set():
            polls["in_op"] += 1
            if polls["in_op"] == 40:
                held.set()
                released.wait(30)
        return poll(self)

    monkeypatch.setattr(Kernel, "poll_interrupt", holding_poll)

    async def body(app, pilot):
        main = app.main
        await press(app, pilot, "b")  # to step 4
        s._events_cache.clear()  # (the inspector's history lookup read the long op's events)
        s._events_cached = 0
        polls["armed"] = True
        await pilot.press("b")  # to step 3: the long op is replayed, or recorded for the view
        for _ in range(1200):
            if held.is_set():
                break
            await asyncio.sleep(0.05)
        assert held.is_set(), "the back-step never reached the long op"
        await pilot.press("escape")
        released.set()
        await app.workers.wait_for_complete()
        await settle(app, pilot)
        pos = s.position
        header_step = next(p for p in main.header_text().split(" │ ") if p.startswith("step "))
        assert header_step == f"step {pos} / {s.n_ops}"
        assert main.oplog.position == pos
        assert main.last_result.after == pos
        costs = main.query_one("#costs").text
        assert f"step {pos.op}" in costs or f"after {pos.op} op" in costs, costs
        ref = Machine(s.machine.config)
        for op in list(s.ops)[:pos.op]:
            ref.apply(op)
        assert s.machine.digest() == ref.digest()
        # the grid shows that machine: a (unmapped by op 5) is there iff pos < 5
        assert pos.op < 5 and any(r.name == "a" for r in main.model.regions)
        assert any(m.startswith(f"interrupted at step {pos}") for m in main.messages), main.messages

    run(s, body, size=(100, 30))


# 6. a block breakpoint stops when the block's descriptors change, not on TLB hits -----------------
def test_block_breakpoint_means_the_block_changed():
    s = open_target("demo")
    s.run()
    heap_start = s.machine.process_list()[0].regions["heap"][0]
    s.seek(0)
    bp = s.add_breakpoint(f"block:{heap_start:#x}")
    end = heap_start + s.machine.arch.g.cont_pte_size
    hits = []
    while (h := s.continue_()) is not None:
        hits.append(h)
        assert h.event is not None
        kind = h.event[0]
        if kind in ("pte_write", "hw_update", "pmd_write"):
            assert heap_start <= h.event[1] < end and h.event[2] != h.event[3]
        else:
            assert kind in ("convert", "fold", "unfold"), h.event
    kinds = {h.event[0] for h in hits}
    assert "pte_write" in kinds and "convert" in kinds and "tlb_hit" not in kinds
    assert bp.hits == len(hits)
    # every write that changed the block is a hit (none skipped)
    writes = 0
    for k in range(s.n_ops):
        writes += sum(1 for ev in s.events_of(k) if ev[0] in ("pte_write", "hw_update")
                      and heap_start <= ev[1] < end and ev[2] != ev[3] and ev[-1] == "p0")
    assert sum(1 for h in hits if h.event[0] in ("pte_write", "hw_update")) >= writes


# 7. breakpoint conditions are checked: unknown event kinds and op verbs are errors ----------------
def test_breakpoint_conditions_are_validated():
    import pytest

    from engine.breakpoints import BreakpointError

    s = open_target("demo")
    for text, names in (("event:folds", "fold, flush_tlb_mm"), ("op:frok", "fork, madvise"),
                        ("op:set_ptes", "call:NAME"), ("event:fold|op:frok", "ops: collapse")):
        with pytest.raises(BreakpointError) as e:
            s.add_breakpoint(text)
        for n in names.split(", "):
            assert n in str(e.value), (text, str(e.value))
    assert s.breakpoints == []
    for ok in ("event:fold", "op:fork", "call:set_ptes", "event:flush_tlb_mm&block:0x1000"):
        s.add_breakpoint(ok)
    assert len(s.breakpoints) == 4
    api = open_target("example")
    api.add_breakpoint("op:ptep")
    with pytest.raises(BreakpointError, match="add_folio, ptep, walk"):
        api.add_breakpoint("op:fork")


def test_breakpoint_dialog_example_is_a_valid_condition():
    import re

    from tui.screens.dialogs import BreakpointDialog

    s = open_target("demo")
    for word in re.findall(r"\b(?:event|op|call):[a-z_]+", BreakpointDialog.HINT):
        s.add_breakpoint(word)


# 8. swap entries are not "present" (the kernel's pte_present) -------------------------------------
def test_inspector_counts_present_as_the_kernel_does():
    from tui.grid_model import GridModel
    from tui.inspect_model import inspect, plain

    s = open_target("demo")
    s.run()
    m = GridModel(s.machine, width=100)
    pt = m._proc().mm.pt
    lay = m.layout
    ps = m.page_size
    swapped_blocks = 0
    for r in m.regions:
        for b in range(r.start & m.cont_mask, r.end, m.cont_ptes * ps):
            vals = [pt.get(b + j * ps) for j in range(m.cont_ptes)]
            n_swap = sum(1 for v in vals if v and not lay.pte_present(v))
            if not n_swap:
                continue
            swapped_blocks += 1
            n_present = sum(1 for v in vals if lay.pte_present(v))
            text = plain(inspect(m, b))
            assert f"{n_present} present," in text and f"{n_swap} swap/migration" in text, text
            m.set_zoom(1)
            z = plain(inspect(m, b, region=r))
            assert f"present   {n_present} of {m.cont_ptes}  (+{n_swap} swap/migration)" in z, z
            m.set_zoom(0)
    assert swapped_blocks >= 1


# 9. ptlab compare reports cont_blocks at the end of each run -------------------------------------
def test_compare_counts_cont_blocks_at_the_end(capsys):
    import json

    from engine.compare_configs import count_cont_blocks
    from tui.cli import main as cli_main

    assert cli_main(["compare", "demo", "--policy", "mainline", "--policy", "never", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["first_divergence"]["op"] == 5  # after op 5 mainline has 1 folded block, never 0
    for one, pol in zip(d["runs"], ("mainline", "never"), strict=True):
        s = open_target("demo", policy=pol)
        s.run()
        assert one["totals"]["cont_blocks"] == count_cont_blocks(s) == 31


# 11. exited processes are marked, and p does not switch to them ----------------------------------
def test_exited_processes_are_marked_and_skipped():
    from engine.session import Position
    from tui.widgets.addrspace import AddressSpace

    s = open_target("demo")
    s.run()
    fork = next(k for k, op in enumerate(s.ops) if op.verb == "fork")
    exit_ = next(k for k, op in enumerate(s.ops) if op.verb == "exit")

    async def body(app, pilot):
        main = app.main
        main.seek(Position(fork + 1))  # the child lives
        await settle(app, pilot)
        await press(app, pilot, "p")
        assert main.model.process == "child" and "proc child │" in main.header_text()
        main.seek(Position(exit_ + 1))  # it has exited: still listed, marked, nothing mapped
        await settle(app, pilot)
        assert "proc child (exited)" in main.header_text()
        assert main.model.empty_hint.startswith("process child has exited")
        lines = main.query_one(AddressSpace)._lines
        assert ("child (exited)" in "".join(t for t, _ in lines[0]))
        await press(app, pilot, "p")
        assert main.model.process == "p0"
        main.seek(Position(s.n_ops))
        await settle(app, pilot)
        await press(app, pilot, "p")  # child and worker have exited: p stays on p0 and says why
        assert main.model.process == "p0"
        assert main.messages[-1] == "only one live process: p0 (child, worker exited)"

    run(s, body)


def test_the_address_space_bars_recount_only_the_slices_a_step_wrote():
    from engine.session import Position
    from tui.widgets.addrspace import AddressSpace, density_bar

    s = open_target("demo")
    s.run()

    async def body(app, pilot):
        main = app.main
        main.seek(Position(2))
        await settle(app, pilot)
        pane = main.query_one(AddressSpace)
        model = main.model
        counted = []
        real = type(model).count_range
        model.count_range = lambda a, b: counted.append((a, b)) or real(model, a, b)
        partial = 0
        for _ in range(s.n_ops - 2):
            counted.clear()
            await press(app, pilot, "n")
            bars = {k: v for k, v in pane._bars.items() if k[0] == model.process}
            n_slices = sum(len(v) for v in bars.values())
            partial += 0 < len(counted) < n_slices
            for (proc, start, end, width), dens in bars.items():
                if any(r.start == start and r.end == end for r in model.regions):
                    assert dens == density_bar(model, start, end, width), (proc, hex(start))
        assert partial >= 3  # steps that recounted some slices, not all

    run(s, body)


# 12. an op that fails leaves a lasting mark in the op log and the header -------------------------
def test_failed_op_is_marked_in_the_op_log(tmp_path):
    f = tmp_path / "boom.py"
    f.write_text("class Boom:\n    name = 'boom'\n"
                 "    def should_try_fold(self, arch, mm, addr, pte):\n"
                 "        raise RuntimeError('no folding today')\n")
    s = open_target("check-08-mprotect-one-page", policy=f"{f}:Boom")

    async def body(app, pilot):
        main = app.main
        await press(app, pilot, "r")
        assert s.error is not None
        k = s.error[0]
        assert s.position.op == k and s.executed == k
        row = main.oplog.row_of(k)
        text = main.oplog.row_text(row, 160)
        assert text.startswith("✗") and "no folding today" in text and "✗ failed" in text
        assert "(not run)" not in text
        assert f"✗ op {k + 1} failed" in main.header_text()
        assert "(not run)" in main.oplog.row_text(main.oplog.row_of(k + 1), 160)

    run(s, body)


# 13. closing the comparison returns the main session to where you were ---------------------------
def test_compare_screen_returns_to_the_position_it_was_opened_at():
    from engine.session import Position

    s = open_target("example")

    async def body(app, pilot):
        main = app.main
        await press(app, pilot, "n", "n", "n", "e")
        here = s.position
        assert here.op == 3
        await press(app, pilot, "d")
        app.screen.dismiss("policy:never")
        await settle(app, pilot)
        cmp = app.screen
        assert cmp.id == "compare" and s.position == Position(19)
        await press(app, pilot, "n")
        await press(app, pilot, "escape")
        assert app.screen is main
        assert s.position == here
        assert f"step {here} / {s.n_ops}" in main.header_text()
        assert main.oplog.position == here

    run(s, body)


# 14. stale text; no terminal ------------------------------------------------------------------------
def test_tui_without_a_terminal_exits_at_once_with_one_line():
    import subprocess
    import sys
    import time

    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "tui.cli", "tui"], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and "needs a terminal (stdin is not a tty)" in r.stderr
    assert time.monotonic() - t0 < 30


def test_help_and_scenario_text_say_what_is_true():
    import re
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    h = subprocess.run([sys.executable, "-m", "tui.cli", "tui", "--help"], capture_output=True, text=True,
                       cwd=root).stdout
    assert "once connected" not in h and "'example'" not in h and ".ptsnap" in h
    first = (root / "engine/scenarios/demo.pts").read_text().splitlines()[1]
    n = int(re.search(r"in (\d+) ops", first).group(1))
    assert n == open_target("demo").n_ops
    doc = (root / "docs/tui.md").read_text()
    assert "once merged" not in doc and "for the merge" not in doc


def test_readme_compare_figures_are_what_the_commands_print(capsys):
    """Every `$ ptlab compare ...` block of the README is re-run; its output must match."""
    import re
    import shlex
    from pathlib import Path

    from tui.cli import main as cli_main

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    blocks = re.findall(r"```\n\$ ptlab (compare [^\n]*)\n(.*?)```", readme, re.S)
    assert len(blocks) == 2
    for cmd, shown in blocks:
        assert cli_main(shlex.split(cmd)) == 0
        assert capsys.readouterr().out == shown, cmd


# Answering "why" where the user looks -----------------------------------------------------------------
def test_block_history_lists_folds_and_unfolds_with_their_cause_and_jumps_there():
    from engine.session import Position
    from tui.history import block_history

    s = open_target("demo")
    s.run()
    heap_start = s.machine.process_list()[0].regions["heap"][0]
    h = block_history(s, "p0", heap_start)
    assert h.complete
    got = [(e.kind, str(e.position), e.op_text) for e in h.entries]
    assert got == [("unfold", "5.73", "mprotect heap +16K 4K r"),
                   ("fold", "4.96", "mprotect heap +60K 4K rw"),
                   ("unfold", "3.74", "mprotect heap +60K 4K r")]
    unfold, fold = h.entries[0], h.entries[1]
    assert unfold.chain_text().startswith(
        "get_and_clear_full_ptes ← modify_prot_start_ptes ← change_pte_range")
    assert unfold.chain_text().endswith("← mprotect")
    assert fold.decision == "policy mainline tried after set_ptes(nr == 1) wrote entry 15"
    for e in h.entries:  # each is where the session says it is
        assert s.events_of(e.op)[e.event] == (e.kind, heap_start)

    async def body(app, pilot):
        main = app.main
        main.go_to_address(heap_start)
        await settle(app, pilot)
        text = main.inspector.text
        assert "Block history" in text and "unfold step 5.73  op 6 mprotect heap +16K 4K r" in text
        assert text.index("Fold explainer") < text.index("PTE ")  # the verdict first
        await press(app, pilot, "w")
        assert app.screen.id == "dialog-history"
        await press(app, pilot, "down", "enter")  # the fold
        assert app.screen is main
        assert s.position == Position(4, 96)
        assert "folded ✓" in main.inspector.text

    s.seek(s.n_ops)
    run(s, body)


def test_explainer_summarises_reasons_in_sentences():
    s = open_target("demo")
    s.seek(4)  # heap: mprotect made entry 15 read-only
    heap_start = s.machine.process_list()[0].regions["heap"][0]
    ex = explain_block(s.machine.arch, s.machine.process_list()[0].mm, heap_start)
    assert ex.sentences() == ["entries 0–14 writable, entry 15 read-only"]
    s.seek(1)
    ex = explain_block(s.machine.arch, s.machine.process_list()[0].mm, heap_start)
    assert ex.sentences() == ["entries 0–15 are none"]
    assert len(ex.reasons) == 16


def test_compare_screen_decodes_the_pair_under_the_cursor_and_walks_the_differences():
    s = open_target("example")

    async def body(app, pilot):
        await press(app, pilot, "d")
        app.screen.dismiss("policy:never")
        await settle(app, pilot)
        cmp = app.screen
        assert cmp.id == "compare"
        diffs = sorted(a for p, a in cmp.res.diff if p == cmp.model_a.process)
        assert len(diffs) == 16
        first = cmp.pair_text().splitlines()
        assert first[0].startswith(f"{diffs[0]:#x} differs")
        ra, rb = cmp.model_a.raw(diffs[0]), cmp.model_b.raw(diffs[0])
        assert ra != rb and first[1].startswith(f"A {ra:#018x} ") and first[2].startswith(f"B {rb:#018x} ")
        await press(app, pilot, "full_stop")
        assert cmp.query_one("#grid-a").cursor_addr == diffs[1]
        assert cmp.query_one("#grid-b").cursor_addr == diffs[1]
        assert cmp.pair_text().startswith(f"{diffs[1]:#x} differs")
        await press(app, pilot, "comma", "comma")
        assert cmp.query_one("#grid-a").cursor_addr == diffs[-1]  # wraps around

    run(s, body)


# Layout: 80x24 --------------------------------------------------------------------------------------
def test_80x24_keeps_a_whole_block_on_a_row_and_the_step_in_the_header():
    from tui.grid_model import GridModel

    s = open_target("demo")
    s.seek(4)
    m = GridModel(s.machine, width=43)
    assert m.cells_per_row == 16 and m.sep == 0 and m.row_width <= 43

    async def body(app, pilot):
        main = app.main
        assert main.has_class("-narrow") and main.has_class("-short")
        assert not main.query_one("#left").display
        grid = main.grid
        assert grid.model.cells_per_row == 16
        assert grid.size.width >= grid.model.row_width
        row, _ = grid.model.locate(grid.model.regions[0].start)
        assert "ddddddddddddddd" in grid.model.row_text(row)
        header = main.query_one("#header").render()
        assert "step 4 / 50" in str(header)[:40]

    run(s, body, size=(80, 24))


def test_dirty_read_only_looks_different_from_dirty_writable():
    from engine.pte import PTE_WRITE
    from tui.grid_model import GridModel
    from tui.legend import BY_NAME

    s = open_target("demo")
    fork = next(k for k, op in enumerate(s.ops) if op.verb == "fork")
    s.seek(fork)
    m = GridModel(s.machine, width=100)
    heap = next(r for r in m.regions if r.name == "heap")
    before = m.row_text(m.locate(heap.start)[0])
    s.seek(fork + 1)  # fork write-protected the parent's dirty entries
    m = GridModel(s.machine, width=100)
    after = m.row_text(m.locate(heap.start)[0])
    v = m.raw(heap.start)
    assert not v & PTE_WRITE and m.state_of(heap.start, v) == "dirtyro"
    assert ("d" in before or "D" in before) and ("x" in after or "X" in after)
    assert BY_NAME["dirtyro"].glyph != BY_NAME["dirty"].glyph


def test_the_scenarios_own_comment_is_shown_with_the_current_op():
    from engine.session import Position
    from tui.story import comment_for

    s = open_target("demo")
    ops = list(s.ops)
    assert comment_for(s.source, ops[5].line) == ["A middle page does not refold: the block stays unfolded."]
    assert comment_for(s.source, ops[0].line)[0].startswith("1. An anonymous write fault")
    assert comment_for("# SPDX-License-Identifier: GPL-2.0-only\nmmap a 64K\n", 2) == []

    async def body(app, pilot):
        main = app.main
        main.seek(Position(5))
        await settle(app, pilot)
        assert main.story_text() == "op 6: A middle page does not refold: the block stays unfolded."
        assert "A middle page does not refold" in str(main.query_one("#story").render())
        await press(app, pilot, "n", "n")
        assert main.story_text().startswith("op 8: 3. Three more folios, then fork")

    run(s, body)


def test_search_and_fold_jumps():
    from engine.session import Position

    s = open_target("demo")

    async def body(app, pilot):
        main = app.main
        await press(app, pilot, "f")  # the first fold or unfold of the session
        assert s.position == Position(3, 74) and "next fold/unfold: step 3.74 (unfold" in main.messages[-1]
        await press(app, pilot, "f")
        assert s.position == Position(4, 96)
        await press(app, pilot, "F")
        assert s.position == Position(3, 74)
        main.search("fork")  # op text
        await settle(app, pilot)
        k = s.position.op
        assert s.ops[k].verb == "fork" and s.position.event == 0
        main.search("tlb_conflict")  # an event kind with no match: stays, says so
        await settle(app, pilot)
        assert s.position == Position(k) and main.messages[-1] == (
            f"event:tlb_conflict: no match after step {k}")
        main.search("call:contpte_convert")
        await settle(app, pilot)
        ev = s.events_of(s.position.op)[s.position.event]
        assert ev[0] == "call" and ev[1] == "contpte_convert" and s.position.op >= k
        main.search("event:folds")  # a bad condition is an error, no move
        await settle(app, pilot)
        assert "no event kind 'folds'" in main.messages[-1]
        await press(app, pilot, "slash")
        assert app.screen.id == "dialog-search"

    run(s, body)


def test_copy_descriptor_and_address_to_the_clipboard():
    from engine.session import Position

    s = open_target("demo")

    async def body(app, pilot):
        main = app.main
        main.seek(Position(2))
        await settle(app, pilot)
        heap = main.model.regions[0].start
        main.go_to_address(heap + 0x3000)
        await settle(app, pilot)
        await press(app, pilot, "y")
        raw = main.model.raw(heap + 0x3000)
        assert raw and app.clipboard == f"{raw:#018x}"
        await press(app, pilot, "Y")
        assert app.clipboard == f"{heap + 0x3000:#x}"

    run(s, body)


# A position you can keep ---------------------------------------------------------------------------
def test_snapshot_keeps_position_and_breakpoints_and_asks_before_replacing(tmp_path):
    from engine.session import Position

    path = str(tmp_path / "demo.ptsnap")
    s = open_target("demo")

    async def body(app, pilot):
        main = app.main
        main.seek(Position(4, 10))
        await settle(app, pilot)
        main.add_breakpoint("event:fold")
        main.save_snapshot(path)
        await settle(app, pilot)
        assert s.position == Position(4, 10)
        assert main.header_text().startswith("demo.ptsnap (demo) │")
        # open it: position and breakpoints come back, the header names the file
        main.seek(Position(0))
        await settle(app, pilot)
        main.open_snapshot(path)
        await settle(app, pilot)
        t = main.session
        assert t is not s and t.position == Position(4, 10)
        assert [b.text for b in t.breakpoints] == ["event:fold"]
        assert main.header_text().startswith("demo.ptsnap (demo) │ step 4.10 / 50")
        assert any(m.startswith(f"opened {path} at step 4.10 with 1 breakpoint") for m in main.messages)
        # ctrl+s over another existing file asks first
        other = tmp_path / "other.ptsnap"
        other.write_bytes(b"keep me")
        await press(app, pilot, "ctrl+s")
        dlg = app.screen
        dlg.query_one("Input").value = str(other)
        await press(app, pilot, "enter")
        assert app.screen.id == "dialog-overwrite"
        await press(app, pilot, "down", "enter")  # keep it
        assert other.read_bytes() == b"keep me" and main.messages[-1] == "not saved"

    run(s, body)


def test_op_text_shows_sizes_as_written():
    from engine.scenario import parse
    from tui.eventfmt import op_text

    scn = parse("mmap heap 4M\nrepeat 2 i\n  touch heap +{i * 2M} 2M write\nend\n", "x.pts", "x")
    ops = list(scn.ops)
    assert str(ops[2]) == "touch heap +2097152 2M write"  # what the expression gave
    assert [op_text(o) for o in ops] == ["mmap heap 4M", "touch heap +0 2M write", "touch heap +2M 2M write"]
    assert op_text("touch heap +4097 1000 read") == "touch heap +4097 1000 read"  # not sizes
    assert op_text("mmap x 65536 at 0x7f0000010000") == "mmap x 64K at 0x7f0000010000"


def test_the_focused_pane_is_marked():
    s = open_target("demo")

    async def body(app, pilot):
        main = app.main
        assert main.focused_pane() == "grid"
        await press(app, pilot, "tab")
        focused = app.focused.id
        assert main.focused_pane() == (focused if focused in ("grid", "addrspace", "inspector") else None)
        for _ in range(4):
            await press(app, pilot, "tab")
            f = app.focused.id
            lit = [sel for sel in ("#grid-title", "#addrspace-title", "#inspector-title")
                   if main.query_one(sel).has_class("-focused")]
            assert lit == ([f"#{f}-title"] if f in ("grid", "addrspace", "inspector") else []), (f, lit)

    run(s, body)


def test_builtin_scenarios_say_which_granules_they_are_written_for():
    from engine.scenario import builtin_names, resolve
    from tui.errors import UserError
    from tui.targets import GRANULE_NEUTRAL, GranuleMismatch, declared_granules

    with pytest.raises(GranuleMismatch) as e:
        open_target("demo", granule="64K")
    assert str(e.value) == ("tui: demo is written for the 4K granule, not 64K; on 64K try "
                            + ", ".join(GRANULE_NEUTRAL))
    assert isinstance(e.value, UserError) and "\n" not in str(e.value)
    assert open_target(None, granule="64K").name == "page-fault3"  # ptlab tui --granule 64K works
    assert open_target(None).name == "demo"
    for name in builtin_names():
        declared = declared_granules(resolve(name).source)
        assert (declared is None) == (name in GRANULE_NEUTRAL), name
        assert declared is None or "4K" in declared
    for name in GRANULE_NEUTRAL:  # they really run on every granule
        for g in ("16K", "64K"):
            s = open_target(name, granule=g)
            s.run()
            assert s.at_end and s.error is None, (name, g)


def test_machine_at_event_matches_the_descriptors_shown_at_every_event():
    """Batches emitted after their writes must not leak writes past the position into it."""
    from engine.session import Position
    from tui.exact import machine_at_event

    s = open_target("page-fault3", kernel="v6.9")
    block = 0xFFFFF7020000
    for e in list(range(1470, 1552, 3)) + [1544, 1545, 1546, 1547]:
        s.seek(Position(1, e))
        m = machine_at_event(s)
        assert m is not None and s.position == Position(1, e)
        pt = next(p for p in m.process_list() if p.name == "p0").mm.pt
        for j in range(16):
            a = block + j * 4096
            assert pt.get(a) == s.pte("p0", a), (e, hex(a))


def test_the_granules_line_is_not_part_of_the_story():
    from tui.story import comment_for

    src = "# 1. Fault a folio in.\n# granules: 4K 16K   (written for these)\nmmap buf 64K\ntouch buf write\n"
    assert comment_for(src, 3) == ["1. Fault a folio in."]
    assert comment_for("# granules: 4K\nmmap buf 64K\n", 2) == []
