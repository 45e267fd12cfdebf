# SPDX-License-Identifier: GPL-2.0-only
"""Pilot tests of the TUI: keys drive the session through workers; assertions
are on widget state (header text, grid cursor, inspector content, op log)."""

from __future__ import annotations

import asyncio

from tui_support import VA, press, run, settle, vector_session

from engine.session import Position
from tui.app import PtlabApp
from tui.targets import open_target


def step_of(app) -> str:  # type: ignore[no-untyped-def]
    return next(p for p in app.main.header_text().split(" │ ") if p.startswith("step "))


def test_header_shows_settings_and_stepping_forward_and_back():
    s = open_target("example")

    async def body(app, pilot):
        await _stepping(app, pilot, s)
        app.main.seek(Position(0))
        await settle(app, pilot)
        await _transient_zeros(app, pilot, s)

    run(s, body)


async def _stepping(app, pilot, s) -> None:  # type: ignore[no-untyped-def]
    main = app.main
    h = main.header_text()
    for part in ("example", "kernel v7.0", "cpu neoverse-n1", "4K", "policy mainline", "proc mm",
                 "step 0 / 42"):
        assert part in h
    await press(app, pilot, "n", "n")
    assert step_of(app) == "step 2 / 42"
    # the block painted by op 2 is on screen and highlighted as changed
    grid = main.grid
    row, _ = main.model.locate(VA)
    assert "[" + "━".join("W" * 16) + "]" in main.model.row_text(row)
    assert all(c.changed for c in main.model.cells(row))
    from tui.widgets.addrspace import AddressSpace

    minimap = main.query_one(AddressSpace).summary_text
    assert minimap.startswith("mapped 7f0000000000-7f0000200000 m ▄") and " c █" in minimap
    await press(app, pilot, "e")  # into op 3 (add_folio: no events) -> next op boundary
    await press(app, pilot, "n", "s")  # op 4 (set_ptes nr=1), then step into a call of op 5
    assert s.position.op == 4 and s.position.event > 0
    assert step_of(app) == f"step {s.position} / 42"
    assert main.oplog.position == s.position
    assert 4 in main.oplog.expanded  # inside an op, the op log shows its events
    await press(app, pilot, "E")  # back one event
    await press(app, pilot, "b")  # back to the op boundary
    assert s.position == Position(4)
    assert 4 not in main.oplog.expanded
    await press(app, pilot, "b", "b")
    assert s.position == Position(2)
    assert grid.cursor_addr is not None


async def _transient_zeros(app, pilot, s) -> None:  # type: ignore[no-untyped-def]
    main = app.main
    assert main.add_breakpoint("call:contpte_convert")
    await settle(app, pilot)
    await press(app, pilot, "c")
    assert s.position.op == 18  # op 19 folds the second block on its 16th write
    assert main.call_stack_text().endswith("__contpte_try_fold")
    main.go_to_address(VA + 0x10000)
    await settle(app, pilot)
    await press(app, pilot, "s")  # into contpte_convert
    assert "contpte_convert" in main.call_stack_text()
    await press(app, pilot, "e", "e", "e", "e")
    row, _ = main.model.locate(VA + 0x10000)
    text = main.model.row_text(row)
    assert "○" in text, text  # cleared by the break-before-make, still valid at the op's start
    assert "." in step_of(app)  # mid-op: N.E
    assert "mid-op value" in main.inspector.text
    await press(app, pilot, "n")  # finish the op
    assert s.position == Position(19)
    row, _ = main.model.locate(VA + 0x10000)
    assert "━".join("W" * 16) in main.model.row_text(row)


def test_block_breakpoint_and_continue_and_reverse_continue():
    s = open_target("example")

    async def body(app, pilot):
        main = app.main
        await press(app, pilot, "r")  # run to the end so every block exists
        assert s.at_end
        main.seek(Position(2))  # the page table exists from op 2 on
        await settle(app, pilot)
        assert main.go_to_address(VA + 0x10000 + 0x7000)
        await press(app, pilot, "B")
        assert [b.text for b in s.breakpoints] == [f"block:{VA + 0x10000:#x}"]
        row, _ = main.model.locate(VA + 0x10000)
        assert main.model.row_text(row)[0] == "●"
        await press(app, pilot, "c")
        first = s.position
        assert first.op == 3 and any("hit" in m for m in main.messages)  # op 4 writes that block
        await press(app, pilot, "c")
        assert s.position > first
        await press(app, pilot, "C")
        assert s.position == first
        main.go_to_address(VA + 0x10000)
        await press(app, pilot, "B")  # toggles it off
        assert s.breakpoints == []
        main.seek(Position(0))
        await settle(app, pilot)
        await _breakpoint_dialog(app, pilot, s)

    run(s, body)


async def _breakpoint_dialog(app, pilot, s) -> None:  # type: ignore[no-untyped-def]
    main = app.main
    await press(app, pilot, "ctrl+b")
    dlg = app.screen
    assert dlg.id == "dialog-breakpoints"
    await pilot.press(*"event:bogus&block:zz")
    await press(app, pilot, "enter")
    err = str(dlg.query_one("#bp-error").render())
    assert "no event kind 'bogus'" in err and "fold" in err
    dlg.query_one("#bp-input").value = "event:fold"
    await press(app, pilot, "enter")
    assert [b.text for b in s.breakpoints] == ["event:fold"]
    await press(app, pilot, "escape")
    assert app.screen is main
    await press(app, pilot, "c")
    hit = main.last_result.hit
    assert hit is not None and hit.event[0] == "fold" and hit.position == s.position
    assert "● 1 bp" in main.header_text()


def test_go_to_step_and_address_dialogs():
    s = open_target("example")

    async def body(app, pilot):
        main = app.main
        await press(app, pilot, "g")
        inp = app.screen.query_one("#dialog-input")
        inp.value = "30.2"
        await press(app, pilot, "enter")
        assert s.position == Position(30, 2)
        await press(app, pilot, "g")
        app.screen.query_one("#dialog-input").value = "nonsense"
        await press(app, pilot, "enter")
        assert "not a step" in str(app.screen.query_one("#dialog-error").render())
        await press(app, pilot, "escape")
        await press(app, pilot, "a")
        app.screen.query_one("#dialog-input").value = f"{VA + 0x43000:#x}"
        await press(app, pilot, "enter")
        assert main.grid.cursor_addr == VA + 0x43000
        assert f"PTE {VA + 0x43000:#x}" in main.inspector.text
        # outside every range: nearest range, with a warning
        main.go_to_address(0x1000)
        await settle(app, pilot)
        assert "not mapped" in main.messages[-1]
        await _inspector_on_a_cont_entry_shows_bits_block_folio_and_explainer(app, pilot, s)
        await _zoom_keys_summarise_and_keep_the_cursor_address(app, pilot, s)
        await _grid_cursor_keys_and_process_switch(app, pilot, s)

    run(s, body)


def test_snapshot_save_and_open_round_trip(tmp_path):
    s = open_target("example")
    path = str(tmp_path / "x.ptsnap")

    async def body(app, pilot):
        main = app.main
        await press(app, pilot, "n")
        await press(app, pilot, "n")
        await press(app, pilot, "ctrl+s")
        assert app.screen.id == "dialog-save"
        app.screen.query_one("#dialog-input").value = path
        await press(app, pilot, "enter")
        assert app.screen is main
        assert main.messages[-1] == f"saved {path}"
        await press(app, pilot, "ctrl+o")
        app.screen.query_one("#dialog-input").value = path
        await press(app, pilot, "enter")
        assert main.messages[-1] == f"opened {path} at step 2"  # where it was saved
        assert main.session is not s and main.session.position == s.position
        assert len(main.session.ops) == len(s.ops)
        # opening a file that is not a snapshot is a one-line error, and the app carries on
        bad = tmp_path / "bad.ptsnap"
        bad.write_bytes(b"nope")
        await press(app, pilot, "ctrl+o")
        app.screen.query_one("#dialog-input").value = str(bad)
        await press(app, pilot, "enter")
        assert main.messages[-1].startswith("cannot open") and "\n" not in main.messages[-1]
        await _palette_provider_lists_registered_actions(app, pilot, s)
        await _help_screen_lists_keys_and_legend(app, pilot, s)

    run(s, body)


def test_op_log_expands_an_op_into_its_events_and_seeks():
    s = open_target("example")

    async def body(app, pilot):
        main = app.main
        await press(app, pilot, "n")
        log = main.oplog
        log.focus()
        await settle(app, pilot)
        log.cursor = log.row_of(1)
        await press(app, pilot, "enter")
        assert 1 in log.expanded
        n = len(log.expanded[1])
        assert log.n_rows == s.n_ops + n
        assert "→ set_ptes(mm" in log.row_text(log.row_of(1, 0))
        log.cursor = log.row_of(1, 3)
        await press(app, pilot, "space")
        assert s.position == Position(1, 3)
        await press(app, pilot, "enter")  # collapse
        assert 1 not in log.expanded

    run(s, body)


def test_compare_screen_finds_the_first_divergence():
    s = open_target("example")

    async def body(app, pilot):
        main = app.main
        await press(app, pilot, "d")
        assert app.screen.id == "dialog-compare"
        main_screen = main
        app.screen.dismiss("policy:never")
        await settle(app, pilot)
        cmp = app.screen
        assert cmp.id == "compare"
        assert cmp.res.first == 18
        h = cmp.header_text()
        assert "policy mainline → never" in h and "page tables (f): first differ after op 19" in h
        assert "16 entries differ" in h
        ga = cmp.query_one("#grid-a")
        row, _ = ga.model.locate(VA + 0x10000)
        assert "━".join("W" * 16) in ga.model.row_text(row)
        gb = cmp.query_one("#grid-b")
        assert "W" not in gb.model.row_text(row)
        assert any("diff" in t for _, t in ga.model.row_segments(row))
        await press(app, pilot, "n")
        assert cmp.res.a.position == Position(20)
        await press(app, pilot, "f")
        assert cmp.res.a.position == Position(19)
        await press(app, pilot, "escape")
        assert app.screen is main_screen
        assert s.position == Position(0)  # back where the comparison was opened

    run(s, body)


def test_long_run_is_interruptible_and_the_ui_keeps_running():
    s = vector_session(46)  # the longest trace

    async def body(app, pilot):
        main = app.main
        slow = s.machine.apply

        def apply(op):  # make every op slow enough to interrupt
            import time

            time.sleep(0.01)
            slow(op)

        s.machine.apply = apply
        await pilot.press("r")
        await asyncio.sleep(0.6)
        await pilot.pause()
        assert main.ctl.busy and "running: run to end" in main.header_text()
        assert main.query_one("#progress").has_class("-busy")
        await pilot.press("escape")
        s.machine.apply = slow
        await settle(app, pilot)
        assert not s.at_end and s.k > 0
        assert any("interrupted" in m for m in main.messages)
        assert not main.query_one("#progress").has_class("-busy")

    run(s, body)


def test_keymap_file_rebinds_an_action(tmp_path, monkeypatch):
    km = tmp_path / "keymap.toml"
    km.write_text('[keys]\nstep = "x"\nbogus = "y"\n')
    s = open_target("example")

    async def main_() -> None:
        app = PtlabApp(s, keymap_path=km)
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(app, pilot)
            await press(app, pilot, "x")
            assert s.position == Position(1)
            assert any("unknown action 'bogus'" in n.message for n in app._notifications)

    asyncio.run(main_())


async def _palette_provider_lists_registered_actions(app, pilot, s) -> None:  # type: ignore[no-untyped-def]
    from tui.palette import PtlabCommands

    provider = PtlabCommands(app.screen)
    titles = [t for t, _, _ in provider._commands()]
    assert any(t.startswith("Step one op forward") for t in titles)
    assert "Break on event: fold" in titles
    assert any(t.startswith("Compare with kernel v6.9") for t in titles)




async def _inspector_on_a_cont_entry_shows_bits_block_folio_and_explainer(app, pilot, s) -> None:  # type: ignore[no-untyped-def]
    main = app.main
    await press(app, pilot, "r")
    main.go_to_address(VA + 0x43000)
    await settle(app, pilot)
    text = main.inspector.text
    for part in ("PTE 0x7f0000043000", "young + CONT", "0x0078000080043fc3", "PTE_CONT", "clear     NS GP",
                 "Block 0x7f0000040000-0x7f0000050000", "16 present, 16 valid, 16 CONT",
                 "pfn 0x80040  64 pages (order 6", "folded ✓", "in this state since op"):
        assert part in text, part
    # the unfolded block: the explainer says why
    main.go_to_address(VA + 0x17000)
    await settle(app, pilot)
    assert "entry 7 read-only, entry 15 writable" in main.inspector.text


async def _zoom_keys_summarise_and_keep_the_cursor_address(app, pilot, s) -> None:  # type: ignore[no-untyped-def]
    main = app.main
    await press(app, pilot, "r")
    main.go_to_address(VA + 0x45000)
    await press(app, pilot, "minus")
    assert main.model.zoom == 1 and "zoom ×16" in main.header_text()
    grid = main.grid
    assert main.model.cell_addr(grid.cursor_row, grid.cursor_col) == VA + 0x40000
    assert "Cell 0x7f0000040000-0x7f0000050000" in main.inspector.text
    await press(app, pilot, "minus")
    assert main.model.zoom == 2
    await press(app, pilot, "plus", "plus")
    assert main.model.zoom == 0
    await press(app, pilot, "plus")
    assert "closest" in main.messages[-1]


async def _grid_cursor_keys_and_process_switch(app, pilot, s) -> None:  # type: ignore[no-untyped-def]
    main = app.main
    await press(app, pilot, "r")
    main.go_to_address(VA)
    await press(app, pilot, "right", "right", "down")
    assert main.grid.cursor_addr == VA + 0x10000 + 0x2000
    await press(app, pilot, "left", "left", "left")
    assert main.grid.cursor_addr == VA + 0xF000  # wrapped to the previous row's last cell
    await press(app, pilot, "end")
    assert main.grid.cursor_addr == VA + 0x200000 - 0x1000
    await press(app, pilot, "p")
    assert main.messages[-1] == "only one live process: mm"


async def _help_screen_lists_keys_and_legend(app, pilot, s) -> None:  # type: ignore[no-untyped-def]
    await press(app, pilot, "question_mark")
    assert app.screen.id == "help"
    await press(app, pilot, "escape")
    assert app.screen is app.main


def test_process_switch_with_two_address_spaces():
    from types import SimpleNamespace

    from tui_support import folio, ptep

    from engine.pte import PAGE_READONLY
    from engine.ptep_machine import ApiMachine
    from engine.session import Session
    from engine.state.mmstruct import MMStruct

    class TwoProcs(ApiMachine):
        def __init__(self) -> None:
            super().__init__("4K", "v7.0", "neoverse-n1")
            child = MMStruct(self.sim.g, asid=2, name="child")
            for i in range(8):  # a read-only range the ops never touch
                child.pt.set(VA + 0x200000 + i * 4096, ((0x90000 + i) << 12) | PAGE_READONLY)
            vma = SimpleNamespace(name="lib", start=VA + 0x200000, end=VA + 0x208000, prot="r", anon=False,
                                  shared=False)
            self.procs = [self.current, SimpleNamespace(name="child", mm=child, alive=True, vmas=[vma],
                                                        regions={})]

    s = Session(TwoProcs, [folio(0x80000, 16), ptep("set_ptes", VA, (0x80000 << 12) | PAGE_READONLY, 16)],
                name="two")

    async def body(app, pilot):
        main = app.main
        await press(app, pilot, "n", "n")
        assert "proc mm" in main.header_text()
        await press(app, pilot, "p")
        assert "proc child" in main.header_text()
        assert [r.name for r in main.model.regions] == ["lib"]
        assert main.grid.cursor_addr == VA + 0x200000
        assert "PTE 0x7f0000200000  child" in main.inspector.text
        row, _ = main.model.locate(VA + 0x200000)
        assert main.model.row_text(row).split()[1:9] == ["y"] * 8  # PAGE_READONLY has AF set
        await press(app, pilot, "p")
        assert "proc mm" in main.header_text()

    run(s, body)


def test_panels_wait_for_a_job_that_moves_the_session():
    """A save runs the session ahead to its end and back, a history lookup
    seeks: panels refreshed meanwhile showed that transient step (the op log
    stayed at op 137 of kbuild while the session was back at 101, found by
    the monkey). They now wait until the session is idle."""
    from engine.session import Position as P

    s = open_target("demo")

    async def body(app, pilot):
        main = app.main
        await press(app, pilot, "n", "n")
        assert main.oplog.position == s.position == P(2)
        busy = object()
        main.ctl.running = busy  # a job holds the session ...
        s.seek(P(s.n_ops))  # ... and has moved it for its own purposes
        main._refresh_panels()
        assert main._panels_deferred and main.oplog.position == P(2)
        s.seek(P(2))  # the job puts it back and ends
        main.ctl.running = None
        main._on_busy_change()
        await settle(app, pilot)
        assert not main._panels_deferred and main.oplog.position == P(2)

    run(s, body)
