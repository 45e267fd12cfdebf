# SPDX-License-Identifier: GPL-2.0-only
"""Issue 14, the remaining parts: the comparison (both divergences, any setting, the
inspector of the pair, next difference), jumps (pfn, folio, convert, foldable block),
progress inside a long op, the palette, the inspector's layout and hex style."""

from __future__ import annotations

from pathlib import Path

import pytest
from tui_support import press, run, settle

from engine.session import Position
from tui.targets import open_target


# 1. the comparison ---------------------------------------------------------------------------------
@pytest.mark.parametrize("start,expected", [("tables", 5), ("costs", 4)])
def test_compare_screen_names_both_divergences_and_opens_at_the_chosen_one(start, expected):
    """demo under policy never: the costs part at op 4 (a read less), the tables after op 5."""
    s = open_target("demo")

    async def body(app, pilot):
        main = app.main
        if start == "costs":  # the dialog's first line switches where it opens
            await press(app, pilot, "d")
            assert app.screen.id == "dialog-compare"
            app.screen.dismiss("start:")
            await settle(app, pilot)
            assert main.compare_start == "costs"
            assert app.screen.id == "dialog-compare-costs"  # the dialog again, saying so
            assert "opens at the first cost divergence" in app.screen.choices[0][1]
        else:
            await press(app, pilot, "d")
        app.screen.dismiss("policy:never")
        await settle(app, pilot)
        cmp = app.screen
        assert cmp.id == "compare"
        assert (cmp.res.first, cmp.res.first_cost) == (4, 3)
        assert s.position == Position(expected)
        h = cmp.header_text()
        assert "page tables (f): first differ after op 5" in h
        assert "costs (c): first differ at op 4: cycles 21,6" in h and "pte_reads 6 → 5" in h
        other = 4 if expected == 5 else 5
        await press(app, pilot, "c" if expected == 5 else "f")
        assert s.position == Position(other)
        await press(app, pilot, "escape")
        assert s.position == Position(0)

    run(s, body)


def test_compare_screen_next_difference_walks_the_differing_ops():
    from tui.variants import differing_ops

    s = open_target("demo")

    async def body(app, pilot):
        await press(app, pilot, "d")
        app.screen.dismiss("policy:never")
        await settle(app, pilot)
        cmp = app.screen
        ops = differing_ops(cmp.res.a, cmp.res.b)
        assert cmp.res.ops == ops and ops[:2] == [3, 4]
        assert s.position == Position(5)  # after op 5 (index 4)
        await press(app, pilot, "greater_than_sign")
        assert s.position == Position(ops[2] + 1)
        await press(app, pilot, "less_than_sign", "less_than_sign")
        assert s.position == Position(ops[0] + 1)
        await press(app, pilot, "less_than_sign")  # nothing before the first: stays
        assert s.position == Position(ops[0] + 1)

    run(s, body)


def test_compare_screen_inspects_both_sides_of_the_pair():
    s = open_target("example")

    async def body(app, pilot):
        await press(app, pilot, "d")
        app.screen.dismiss("policy:never")
        await settle(app, pilot)
        cmp = app.screen
        pair = cmp.pair_text().splitlines()
        assert "differs" in pair[0] and "only A: PTE_CONT" in pair[0]
        assert pair[-1] == "block: A folded · B foldable, not folded"
        await press(app, pilot, "i")
        assert app.screen.id == "dialog-compare-inspect"
        from rich.console import Console

        console = Console(width=160, record=True)
        console.print(cmp.inspector_text())
        text = console.export_text()
        assert "folded ✓" in text and "foldable ◇" in text
        assert text.count("Fold explainer") == 2 and text.count("Folio") >= 2
        await press(app, pilot, "escape")
        assert app.screen is cmp

    run(s, body)


def test_compare_with_a_cpu_toml_and_a_policy_file_and_a_granule(tmp_path):
    from tui.errors import UserError
    from tui.variants import parse_variant, settings_of, variant

    assert parse_variant("x.toml") == {"cpu": "x.toml"}
    assert parse_variant("p.py:Mine") == {"policy": "p.py:Mine"}
    assert parse_variant("16k") == {"granule": "16K"}
    assert parse_variant("kernel:v6.9") == {"kernel": "v6.9"}
    with pytest.raises(UserError, match="in use already"):
        parse_variant("v7.0", {"kernel": "v7.0"})
    with pytest.raises(UserError, match="not a kernel profile"):
        parse_variant("frobnicate")

    toml = tmp_path / "slow.toml"
    toml.write_text('name = "slow"\nbase = "neoverse-n1"\n[weights]\ndsb_ish = 999\n')
    s = open_target("page-fault3")
    b = variant(s, cpu=str(toml))
    assert settings_of(b)["cpu"] == "slow"
    pol = Path(__file__).parent / "data" / "policies" / "first_entry.py"
    b = variant(s, policy=f"{pol}:FirstEntry")
    assert settings_of(b)["policy"] in ("first-entry", f"{pol}:FirstEntry")
    g = variant(s, granule="16K")
    assert g.machine.arch.g.name == "16K"
    with pytest.raises(UserError, match="written for the 4K granule"):
        variant(open_target("demo"), granule="64K")

    async def body(app, pilot):
        app.main.compare_with(granule="16K")
        await settle(app, pilot)
        cmp = app.screen
        assert cmp.id == "compare"
        h = cmp.header_text()
        assert "granule 4K → 16K" in h and "not compared one by one across granules" in h
        assert cmp.res.diff == set() and cmp.res.first_cost == 1
        assert "granule 16K" in str(cmp.query_one("#cmp-title-b").render())
        assert cmp.pair_text().count("0x") >= 3  # both sides decoded at the cursor's VA

    run(open_target("page-fault3"), body)


def test_compare_dialog_offers_cpu_granule_and_other():
    s = open_target("page-fault3")

    async def body(app, pilot):
        await press(app, pilot, "d")
        keys = [k for k, _ in app.screen.choices]
        assert keys[0] == "start:" and "cpu:apple-m2" in keys and "granule:16K" in keys and "other:" in keys
        app.screen.dismiss("other:")
        await settle(app, pilot)
        assert app.screen.id == "dialog-compare-other"
        app.screen.dismiss("cpu:apple-m2")
        await settle(app, pilot)
        assert app.screen.id == "compare"
        assert "cpu neoverse-n1 → apple-m2" in app.screen.header_text()

    run(s, body)


# 4. the palette ------------------------------------------------------------------------------------
def test_palette_shows_each_command_once_with_its_key():
    s = open_target("demo")

    async def body(app, pilot):
        from tui.actions import MAIN_ACTIONS

        await press(app, pilot, "ctrl+p")
        await pilot.pause(0.3)
        await settle(app, pilot)
        ol = app.screen.query_one("CommandList")
        prompts = [str(ol.get_option_at_index(i).prompt) for i in range(ol.option_count)]
        titles = [p.split("\n")[0] for p in prompts]
        assert len(titles) == len(set(titles))
        assert not any(t in ("Quit", "Keys") for t in titles)  # ours: q, ?
        for a in MAIN_ACTIONS:
            if a.palette and a.id != "interrupt":
                mine = [p for p in prompts if p.startswith(a.help)]
                assert len(mine) == 1, a.id
                assert "\n" not in mine[0]  # the title is not repeated as help
                assert mine[0].endswith(")")  # with its key

    run(s, body)


def test_event_names_take_their_article():
    from tui.palette import an_event

    assert an_event("unfold") == "an unfold event"
    assert an_event("fold") == "a fold event"
    assert an_event("invariant_violation") == "an invariant_violation event"
    assert an_event("tlbi") == "a tlbi event"


def test_ptlab_compare_varies_the_granule_and_takes_a_cpu_toml(tmp_path, capsys):
    import json

    from tui.cli import main as cli_main

    assert cli_main(["compare", "page-fault3", "--granule", "4K", "--granule", "16K", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["varied"] == "granule" and [r["granule"] for r in d["runs"]] == ["4K", "16K"]
    assert cli_main(["compare", "page-fault3", "--granule", "4K", "--granule", "16K"]) == 0
    assert "not compared entry by entry across granules" in capsys.readouterr().out
    toml = tmp_path / "slow.toml"
    toml.write_text('name = "slow"\nbase = "neoverse-n1"\n[weights]\ndsb_ish = 999\n')
    assert cli_main(["compare", "page-fault3", "--cpu", "neoverse-n1", "--cpu", str(toml), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert [r["cpu"] for r in d["runs"]] == ["neoverse-n1", "slow"]
    assert d["runs"][1]["totals"]["cycles"] != d["runs"][0]["totals"]["cycles"]


# 2. jumps ------------------------------------------------------------------------------------------
def _demo_after_fork():
    s = open_target("demo")
    fork = next(k for k, op in enumerate(s.ops) if op.verb == "fork")
    return s, fork + 1


def test_go_to_pfn_and_folio_walks_every_mapping_across_processes():
    from tui.search import parse_pfn_query

    assert parse_pfn_query("pfn 0x80010") == ("pfn", 0x80010)
    assert parse_pfn_query("folio: 80000") == ("folio", 0x80000)
    assert parse_pfn_query("80010") == ("pfn", 0x80010)
    with pytest.raises(ValueError, match="not a pfn"):
        parse_pfn_query("pfn zz")
    s, at = _demo_after_fork()

    async def body(app, pilot):
        main = app.main
        main.seek(Position(at))
        await settle(app, pilot)
        heap = next(r for r in main.model.regions if r.name == "heap")
        raw = main.model.raw(heap.start + 0x3000)
        pfn = (raw & main.model.addr_mask) >> main.model.page_shift
        parent = main.model.process
        await press(app, pilot, "P")
        assert app.screen.id == "dialog-goto-pfn"
        app.screen.dismiss(f"pfn {pfn:#x}")
        await settle(app, pilot)
        assert main.grid.cursor_addr == heap.start + 0x3000 and main.model.process == parent
        assert f"pfn {pfn:#x} mapped at {heap.start + 0x3000:#x} in {parent}" in main.messages[-1]
        assert main.go_to_pfn("pfn", pfn)  # again: the child maps it too (fork shares the folio)
        assert main.model.process != parent and main.grid.cursor_addr == heap.start + 0x3000
        assert main.go_to_pfn("pfn", pfn)  # and back to the parent
        assert main.model.process == parent
        # a folio: any of its pages; the first after the cursor is the next page
        main.go_to_address(heap.start)
        await settle(app, pilot)
        head = (main.model.raw(heap.start) & main.model.addr_mask) >> main.model.page_shift
        assert main.go_to_pfn("folio", head + 5)
        assert main.grid.cursor_addr == heap.start + main.model.page_size
        assert not main.go_to_pfn("pfn", 0x7ffff0)
        assert "not mapped by any process" in main.messages[-1]

    run(s, body)


def test_jumps_to_the_next_convert_unfold_fold_and_foldable_block():
    from tui.search import jump_event, next_foldable

    s = open_target("demo")
    hit = jump_event(s, "unfold")
    assert hit is not None and s.position.op == 3  # inside op 4: mprotect +60K r unfolds
    fold = jump_event(s, "fold")
    assert fold.position.op == 4  # op 5 refolds
    back = jump_event(s, "convert", reverse=True)
    assert back is not None and back.position < fold.position and back.event[0] == "convert"
    s.seek(Position(7))  # the middle page went read-only and back: foldable, not refolded
    from tui.grid_model import GridModel

    m = GridModel(s.machine, width=100)
    heap = next(r for r in m.regions if r.name == "heap")
    assert next_foldable(m, None) == heap.start
    assert next_foldable(m, heap.start) == heap.start  # the only one: wraps to itself
    s.seek(Position(5))
    m = GridModel(s.machine, width=100)
    assert next_foldable(m, None) is None  # folded again: nothing to find

    s = open_target("demo")

    async def body(app, pilot):
        main = app.main
        await press(app, pilot, "u")
        assert s.position.op == 3 and s.position.event > 0 and "next unfold" in main.messages[-1]
        await press(app, pilot, "t")
        assert s.position.op == 4  # the fold's convert
        await press(app, pilot, "T")
        assert s.position.op == 3
        main.seek(Position(7))
        await settle(app, pilot)
        main.go_to_address(0)
        await press(app, pilot, "z")
        heap = next(r for r in main.model.regions if r.name == "heap")
        assert main.grid.cursor_addr == heap.start and "could fold" not in main.messages[-1]
        assert "passes every fold check, not folded" in main.messages[-1]

    run(s, body)


# 3. progress inside a long op -----------------------------------------------------------------------
def test_a_long_op_reports_its_own_progress_events_done_of_its_total(tmp_path):
    """The worker's interrupt poll (called from inside the op) records the op's events so far;
    a re-run (after a back-step) knows the op's total, so the bar moves inside the op."""
    from tui.controller import SessionController

    pts = tmp_path / "long.pts"
    pts.write_text("# granules: 4K\nkernel v7.0\nmmap heap 8M\ntouch heap +0 8M write\nmunmap heap\n")
    s = open_target(str(pts))

    class FakeApp:
        pass

    ctl = SessionController(FakeApp(), s)
    ctl.OP_PROGRESS_EVERY = 0.0  # every poll (the UI reads at most 20 a second)
    seen = []
    real = ctl._note_op_progress

    def spy(now: float) -> None:
        real(now)
        if ctl.op_progress is not None:
            seen.append(ctl.op_progress)

    ctl._note_op_progress = spy  # type: ignore[method-assign]
    s.run()
    first = [p for p in seen if p.op == 1]
    assert len(first) > 10 and all(p.total is None for p in first)
    assert [p.done for p in first] == sorted(p.done for p in first)
    assert "events so far" in first[-1].text()
    total = s.records[1].counters["events"]
    assert first[-1].done <= total
    seen.clear()
    s.seek(Position(1))
    s.seek(Position(2))  # the same op again: its total is known now
    again = [p for p in seen if p.op == 1]
    assert again and all(p.total == total for p in again)
    assert 0 < again[len(again) // 2].done < total
    assert again[-1].text("touch heap +0 8M write") == (
        f"op 2 (touch heap +0 8M write): {again[-1].done:,} of {total:,} events")


def test_events_so_far_counts_what_totals_counts():
    for record in (True, False):
        s = open_target("demo")
        log = s.machine.log
        log.clear()
        log.set_recording(record)
        s.machine.apply(s.ops[0])
        s.machine.apply(s.ops[1])
        n = log.events_so_far()
        assert n > 0 and n == log.totals()["events"]
        log.clear()
        log.set_recording(False)


# 5. the inspector's layout and hex style ---------------------------------------------------------------
def test_inspector_labels_fit_values_hang_and_hex_has_one_style():
    import re

    s = open_target("demo")

    async def body(app, pilot):
        main = app.main
        main.seek(Position(20))
        await settle(app, pilot)
        heap = next(r for r in main.model.regions if r.name == "heap")
        main.go_to_address(heap.start)  # foldable, not folded: a note that wraps
        await settle(app, pilot)
        await pilot.pause(0.3)
        await settle(app, pilot)
        rows = [st.text for st in main.inspector._strips]
        # the note wraps under itself, not back to the pane's edge
        i = next(j for j, r in enumerate(rows) if "note:" in r)
        indent = rows[i].index("note:") + len("note: ")
        assert rows[i + 1][:indent].strip() == "" and rows[i + 1][indent] != " "
        main.go_to_address(heap.start + 0x10000)  # a swap entry: the longest field names
        await settle(app, pilot)
        await pilot.pause(0.3)
        await settle(app, pilot)
        rows = [st.text for st in main.inspector._strips]
        text = "\n".join(rows)
        for label in ("swp_offset", "max_swapfiles"):
            assert re.search(rf"^ {label} +\S", text, re.M), label  # whole, then its value
        # every value starts in one column
        starts = {len(r) - len(r[1:].lstrip(" ")) for r in rows
                  if re.match(r"^ (raw|decoded|swp_type|swp_offset|entry) ", r)}
        assert len(starts) == 1
        # one hex style: addresses 0x..., descriptors 0x + 16 digits
        assert f"PTE {heap.start + 0x10000:#x}" in text
        assert f"{heap.start + 0x10000:#x}-{heap.start + 0x20000:#x}" in text
        raw = main.model.raw(heap.start + 0x10000)
        assert f"{raw:#018x}" in text
        assert not re.search(r"(?<![0-9a-fx])[0-9a-f]{12}(?![0-9a-f])", text)  # no bare 12-digit VA

    run(s, body)


def test_event_text_uses_the_one_hex_style():
    from tui.eventfmt import format_event

    assert format_event(("pte_write", 0x7F0000010000, 0, 0x00F8000080010F43, "store", "p0")) == (
        "pte_write 0x7f0000010000 0→0x00f8000080010f43")
    assert format_event(("pte_read", 0x7F0000010000, 0x0078000080043FC3)).startswith(
        "pte_read 0x7f0000010000 = 0x0078000080043fc3")


def test_only_the_granules_a_scenario_is_written_for_are_offered():
    from tui.variants import granules_for

    assert granules_for(open_target("demo")) == ["4K"]
    assert granules_for(open_target("page-fault3")) == ["4K", "16K", "64K"]
    s = open_target("demo")

    async def body(app, pilot):
        await press(app, pilot, "d")
        keys = [k for k, _ in app.screen.choices]
        assert not any(k.startswith("granule:") for k in keys)
        from tui.palette import PtlabCommands

        titles = [t for t, _, _ in PtlabCommands(app.screen)._commands()]
        assert not any(t.startswith("Compare with granule") for t in titles)

    run(s, body)
