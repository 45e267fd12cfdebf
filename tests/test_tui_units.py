# SPDX-License-Identifier: GPL-2.0-only
"""The TUI's plain-Python parts: target registry and CLI, snapshot I/O stub,
cost prefix sums, "since op N" history, keymap files, event formatting, the
comparison logic and the worker-side step functions."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
from tui_support import DATA, VA, vector_session

from engine.queries import since_op
from engine.session import Position
from tui import snapshot_files, targets
from tui.controller import do_back, do_continue, do_run_to_end, do_seek, do_step
from tui.cost_totals import CostModel, sparkline
from tui.errors import UserError
from tui.eventfmt import call_depths, format_event, op_costs
from tui.keymap import load_keymap, parse_keymap
from tui.targets import open_target
from tui.variants import diff_addrs, first_divergence, run_compare, variant

ROOT = Path(__file__).resolve().parent.parent


# --- targets ---------------------------------------------------------------------------------
def test_default_target_and_example():
    s = open_target(None)  # ptlab with no arguments: the built-in demo scenario
    assert s.name == "demo" and s.meta["machine"] == "scenario" and s.n_ops > 30
    assert open_target("example").n_ops > 30
    s2 = open_target("example", kernel="v6.9", granule="64K", cpu="neoverse-v3", policy="never")
    arch = s2.machine.arch
    assert (arch.profile.name, arch.g.name, arch.cpu.name) == ("v6.9", "64K", "neoverse-v3")
    assert arch.fold_policy.name == "never"


def test_vector_file_target_with_index():
    s = open_target(f"{DATA}:8")
    assert s.machine.arch.g.name == "64K" and s.name == "ptep-vectors.json:8"
    assert open_target(str(DATA)).name == "ptep-vectors.json:0"
    s = open_target(f"{DATA}:1", kernel="v6.10")
    assert s.machine.arch.profile.name == "v6.10"


@pytest.mark.parametrize("spec, msg", [
    ("nope.json", "no such file"),
    (f"{DATA}:99", "out of range"),
    (f"{DATA}:x", "is not a number"),
    ("zzz", "not a known target"),
])
def test_bad_targets_are_one_line_user_errors(spec, msg):
    with pytest.raises(UserError) as e:
        open_target(spec)
    assert msg in str(e.value) and "\n" not in str(e.value)


def test_bad_overrides_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="unknown kernel profile"):
        open_target("example", kernel="v99")
    with pytest.raises(UserError, match="fix the granule"):
        open_target(f"{DATA}:1", granule="64K")
    bad = tmp_path / "x.json"
    bad.write_text("{not json")
    with pytest.raises(UserError, match="not readable JSON"):
        open_target(str(bad))


def test_registry_takes_new_resolvers_first():
    calls = []

    def mine(spec, ov):
        calls.append((spec, ov))
        return open_target("example") if spec == "demo-x" else None

    targets.register("demo-x", "test resolver", mine, first=True)
    try:
        assert targets.RESOLVERS[0].name == "demo-x"
        assert open_target("demo-x", kernel="v6.9").name == "example"
        assert calls[0] == ("demo-x", targets.Overrides(kernel="v6.9"))
    finally:
        targets.RESOLVERS[:] = [r for r in targets.RESOLVERS if r.name != "demo-x"]


def test_cli_bad_target_exits_2_with_one_line():
    r = subprocess.run([sys.executable, "-m", "tui.cli", "tui", "missing.json"], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert r.stderr.strip() == "ptlab: tui: missing.json: no such file"
    assert "Traceback" not in r.stderr


def test_cli_registers_the_tui_command():
    from tui.cli import build_parser

    parser, modules = build_parser()
    assert "tui" in modules
    args = parser.parse_args(["tui", "example", "--kernel", "v6.9", "--policy", "never"])
    assert (args.target, args.kernel, args.policy) == ("example", "v6.9", "never")


# --- snapshot I/O ------------------------------------------------------------------------------
def test_snapshot_files_round_trip_and_errors(tmp_path):
    s = open_target("example")
    s.run()
    path = tmp_path / "x.ptsnap"
    snapshot_files.save_session(s, path)
    t = snapshot_files.load_session(path)
    assert t.executed == s.executed and t.records[3].digest == s.records[3].digest
    with pytest.raises(snapshot_files.SnapshotIOError):
        snapshot_files.load_session(tmp_path / "missing.ptsnap")
    with pytest.raises(snapshot_files.SnapshotIOError):
        snapshot_files.save_session(s, tmp_path)  # a directory


# --- costs ------------------------------------------------------------------------------------------
def test_cost_prefix_sums_equal_session_totals(monkeypatch):
    import tui.cost_totals

    monkeypatch.setattr(tui.cost_totals, "STRIDE", 7)
    s = vector_session(1)
    s.run()
    cm = CostModel(s)
    for k in (0, 1, 6, 7, 8, 50, s.n_ops):
        want = s.totals(k)
        got = cm.totals(k)
        assert {x: v for x, v in got.items() if v} == {x: v for x, v in want.items() if v}, k
    first, vals = cm.cycles_window(20, 10)
    assert first == 10 and vals == [s.records[i].cycles for i in range(10, 20)]
    spark = sparkline([1.0, None, 4.0], current=2)
    assert spark[1][0] == " " and spark[2] == ("█", True)


# --- since op N ---------------------------------------------------------------------------------
@pytest.mark.parametrize("index", [1, 4])
def test_since_op_matches_a_brute_force_scan(index):
    s = vector_session(index)
    s.checkpoint_ops = 9
    s.run()
    events = [s.events_of(j) for j in range(s.n_ops)]
    g = s.machine.arch.g
    rng = random.Random(index)
    for _ in range(8):
        k = rng.randrange(1, s.n_ops + 1)
        s.seek(Position(k))
        addrs = [(key << g.pmd_shift) + i * g.page_size for key, t in s.machine.sim.mm.pt.tables.items()
                 for i, v in enumerate(t) if v]
        if not addrs:
            continue
        a = rng.choice(addrs)
        lo = a & g.cont_pte_mask
        want = next((j for j in range(k - 1, -1, -1) if any(
            e[0] in ("pte_write", "hw_update") and lo <= e[1] < lo + g.cont_pte_size and e[2] != e[3]
            for e in events[j])), None)
        got = since_op(s, "mm", a)
        assert got.op == want and got.complete
        assert s.position == Position(k)


def test_since_op_stops_when_interrupted():
    s = vector_session(1)
    s.run()
    s.interrupt = lambda: True
    res = since_op(s, "mm", 0x7F0000000000)
    assert not res.complete and s.position == Position(s.n_ops)


# --- keymap -------------------------------------------------------------------------------------------
def test_keymap_parsing(tmp_path):
    km, warns = parse_keymap('[keys]\nstep = "x, space"\nquit = ""\nnope = "z"\n')
    assert km == {"ptlab.step": "x,space"}
    assert len(warns) == 2
    assert parse_keymap("[keys\n")[1][0].startswith("keymap: not valid TOML")
    p = tmp_path / "k.toml"
    p.write_text('[keys]\nback = "backspace"\n')
    assert load_keymap(p) == ({"ptlab.back": "backspace"}, [])
    assert load_keymap(tmp_path / "missing.toml") == ({}, [])


# --- event formatting --------------------------------------------------------------------------------
def test_event_text_and_depths():
    s = open_target("example")
    s.run()
    evs = s.events_of(18)
    texts = [format_event(e) for e in evs]
    assert texts[0].startswith("→ set_ptes(mm, 0x7f000001f000")
    assert "pte_write xchg 0x7f0000010000 0x0068000080010bc3→0" in texts  # one hex style for descriptors
    assert any(t.startswith("tlbi vale1is") for t in texts)
    d = call_depths(evs)
    assert d[0] == 0 and max(d) >= 2 and d[-1] == 0
    assert op_costs(None, None).strip() == "(not run)"
    assert "w33" in op_costs(s.records[18].counters, s.records[18].cycles)


# --- worker-side step functions ---------------------------------------------------------------------
def test_step_functions_report_positions_and_changes():
    s = open_target("example")
    r = do_step(s, "op")
    assert r.after == Position(1) and r.dirty == set()
    r = do_step(s, "op")
    assert r.after == Position(2) and len(r.view.changed) == 16 and r.dirty == r.view.changed
    r = do_step(s, "event")
    assert r.after.op == 2 or r.after == Position(3)
    r = do_back(s, "op")
    assert r.after == Position(2)
    r = do_seek(s, Position(30, 1))
    assert s.position == Position(30, 1) and r.dirty is None and r.stack
    r = do_run_to_end(s)
    assert s.at_end and "at the end" in r.message
    s.add_breakpoint("event:unfold")
    r = do_continue(s, reverse=True)
    assert r.hit is not None and r.hit.event[0] == "unfold"
    r = do_seek(s, Position(0))
    r = do_continue(s)
    assert r.hit is not None and r.after == r.hit.position


def test_step_at_the_frontier_stops_at_a_breakpoint_inside_the_op():
    s = open_target("example")
    s.add_breakpoint("event:convert")
    s.seek(Position(18))
    r = do_step(s, "op")
    assert r.hit is not None and r.after.op == 18 and r.after.event > 0


# --- comparison -------------------------------------------------------------------------------------------
def test_compare_under_another_kernel_finds_a_failing_op():
    a = open_target(f"{DATA}:1")  # a v7.0 trace that calls an entry point v6.9 lacks
    res = run_compare(a, lambda: variant(a, kernel="v6.9"), "kernel v6.9")
    assert res.first is not None and "fails in B" in res.reason
    assert res.b.error is not None


def test_first_divergence_and_diff_addrs():
    a = open_target("example")
    b = variant(a, kernel="baseline")
    a.run()
    b.run()
    k, why = first_divergence(a, b)
    assert k == 1 and "differ" in why
    a.seek(Position(2))
    b.seek(Position(2))
    d = diff_addrs(a, b)
    assert d == {("mm", VA + i * 4096) for i in range(16)}


def test_diff_addrs_marks_what_the_engine_finds():
    """diff_addrs() words engine.queries.iter_differences as (process, VA) marks: a
    differing PMD leaf is marked at its first VA, a process one machine lacks at every
    entry it maps, and under two granules nothing is marked."""
    from engine.queries import iter_differences

    a = open_target("check-03-fork-pte-mapped-2m")
    b = variant(a, kernel="v6.9")
    a.run()
    b.run()
    a.seek(Position(2))  # the 2M THP PMD-mapped
    b.seek(Position(1))  # nothing mapped yet
    (leaf,) = list(iter_differences(a, b))
    assert diff_addrs(a, b) == {leaf[:2]}
    a.seek(Position(4))  # split and forked
    b.seek(Position(3))  # split, no child yet
    marks = diff_addrs(a, b)
    assert {(p, x) for p, x, _, _ in iter_differences(a, b) if x is not None} <= marks
    assert len([m for m in marks if m[0] == "child"]) == 512
    g = variant(a, granule="16K")
    g.run()
    g.seek(Position(4))
    assert next(iter_differences(a, g), None) is not None and diff_addrs(a, g) == set()


def test_variant_of_a_session_that_does_not_record_its_machine_is_a_user_error():
    s = vector_session(1)  # a Session made directly, without meta: reopen cannot rebuild its machine
    with pytest.raises(UserError, match="does not record how its machine was made"):
        variant(s, kernel="v6.9")


def test_vectors_file_is_valid_json():
    assert json.loads(DATA.read_text())["format"] == "ptlab-ptep-vectors/1"


def test_a_failing_op_is_reported_not_raised():
    a = vector_session(1)
    s = targets.api_session(a.ops, "4K", "v6.9", "neoverse-n1", None, name="v6.9")
    r = do_seek(s, Position(70))
    assert s.position == Position(70)
    r = do_step(s, "op")
    assert r.severity == "error" and "does not exist in kernel profile 'v6.9'" in r.message
    assert s.position == Position(70) and s.error is not None
    r = do_run_to_end(s)
    assert r.severity == "error" and not s.at_end


def test_a_back_step_highlights_what_it_undid():
    s = open_target("example")
    do_seek(s, Position(2))
    r = do_back(s, "op")
    assert r.after == Position(1)
    assert r.view.changed == {("mm", VA + i * 4096) for i in range(16)}  # op 2's writes, undone
    assert r.dirty == r.view.changed
    r = do_step(s, "call")  # forward by a call: every write of the step, not only the last event's
    assert r.view.changed <= {("mm", VA + i * 4096) for i in range(16)}


def test_controller_runs_one_job_at_a_time_and_drops_background_work():
    from tui.controller import Job, SessionController

    class FakeApp:
        def __init__(self) -> None:
            self.started: list[str] = []

        def run_worker(self, fn, **kw):  # type: ignore[no-untyped-def]
            self.started.append(kw["name"])
            self.fn = fn

        def call_from_thread(self, fn, *a):  # type: ignore[no-untyped-def]
            fn(*a)

        def notify(self, *a, **kw):  # type: ignore[no-untyped-def]
            pass

    app = FakeApp()
    s = open_target("example")
    ctl = SessionController(app, s)
    done: list[str] = []
    assert ctl.submit(Job("history", lambda s: 1, lambda r: done.append("history"), low=True))
    assert ctl.submit(Job("a", lambda s: 1, lambda r: (done.append("a"), ctl.submit(
        Job("c", lambda s: 1, lambda r: done.append("c"))))))
    assert ctl.submit(Job("b", lambda s: 1, lambda r: done.append("b")))
    assert app.started == ["history"] and ctl.executing and s.interrupt()  # the user's job stops it
    while ctl.running is not None:
        app.fn()
    assert done == ["history", "a", "b", "c"] and app.started == ["history", "a", "b", "c"]
    assert ctl.idle and not s.interrupt()


def test_since_op_sees_a_change_of_the_pmd_above_the_block():
    """mprotect of a whole PMD THP writes only the PMD (change_huge_pmd()): the block
    under it changed at that op (the op's counter is pmd_writes, its event pmd_write)."""
    from engine.scenario import parse
    from engine.scenario_machine import Machine
    from engine.session import Session

    scn = parse("thp always\nmmap a 2M\ntouch a write\nmprotect a +0 2M r\ntouch a read\n", "pmd")
    cfg = scn.config()
    s = Session(lambda: Machine(cfg), scn.ops)
    s.run()
    a = s.machine.kernel.procs[0].regions["a"][0]
    mprotect = s.records[2].counters
    assert mprotect.get("pte_writes", 0) == 0 and mprotect["pmd_writes"] == 2  # xchg, then the new PMD
    got = since_op(s, "p0", a + (64 << 10))
    assert got.op == 2 and got.complete, got
