# SPDX-License-Identifier: GPL-2.0-only
"""One answer per question (issue #15 item 5): every folded-block count ptlab
shows comes from engine.mapping_summary.folded_blocks, and they agree, also on a
misprogrammed block; the explainer's "foldable" is what the fold does."""

from __future__ import annotations

import contextlib

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from mm_program import to_op
from mmhelp import run

from engine.compare_configs import count_cont_blocks
from engine.errors import ScenarioError
from engine.explain import explain_block
from engine.mapping_summary import folded_blocks, machine_summary
from engine.pte import PTE_CONT
from engine.scenario import parse
from engine.scenario_machine import Machine, MachineConfig
from engine.session import Position, Session
from tui.position_summary import process_summary


def _counts(m, session=None) -> tuple[int, ...]:
    tui = sum(process_summary(m.arch, p)["cont_blocks"] for p in m.process_list())
    eng = sum(p["cont_blocks"] for p in machine_summary(m).values())
    out = (m.cont_blocks(), tui, eng)
    if session is not None:
        out += (count_cont_blocks(session),)
    return out


def test_every_count_of_folded_blocks_agrees_on_a_run():
    src = ("mthp 64K=always\nmmap a 256K\ntouch a write\nfork c\nmprotect a +16K 4K r\n"
           "mmap b 128K\ntouch b write\n")
    r = run(src, "v6.12")
    m = r.machine
    s = Session.__new__(Session)  # count_cont_blocks only reads session.machine
    s.machine = m
    # p0: a's 4 blocks less the one mprotect unfolded, b's 2; c: a's 4, copied folded by fork
    assert _counts(m, s) == (9, 9, 9, 9)
    # a misprogrammed block -- entry 3 lost PTE_CONT behind the kernel's back -- is not
    # folded for any of them (the first-entry test some counts used said it was)
    p0 = m.kernel.procs[0]
    b = p0.regions["b"][0]
    t, i = p0.mm.pt.locate(b + 3 * m.g.page_size)
    t[i] &= ~PTE_CONT
    assert _counts(m, s) == (8, 8, 8, 8)
    assert folded_blocks(p0.mm.pt, m.g.cont_ptes, b, b + (128 << 10)) == 1


# --- the explainer and the fold give one answer -----------------------------------------

PROGRAM = st.lists(st.tuples(*(st.integers(0, 999) for _ in range(4))), min_size=0, max_size=16)
SETUP = st.fixed_dictionaries({
    "kernel": st.sampled_from(["v6.9", "v6.12", "v7.3"]),
    "granule": st.sampled_from(["4K", "16K"]),
    "policy": st.sampled_from(["never", "mainline"]),
})
# Starts that leave blocks one step from foldable, foldable but unfolded (the
# "never" policy never folds), or not foldable for one reason each; the random
# program then mixes them. B is the block size, folios are block-sized.
PREFIXES = (
    "mmap a 4B\ntouch a write\nmprotect a +B 16K r\nmprotect a +B 16K rw\n",  # unfolded, foldable
    "mmap a 4B\ntouch a write\nmprotect a +0 2B r\n",  # prot differs from the mapping's own
    "mmap a 4B\ntouch a write\nfork c\nmprotect a +0 16K r\nmprotect a +0 16K rw\n",  # shared with c
    "mmap a 4B\ntouch a write\nmadvise a +B B dontneed\ntouch a +B B write\n",  # refaulted
    "mmap a 4B\ntouch a write\nmadvise a +B B pageout\ntouch a +B B read\n",  # swapped, back
)


def _size(b: int) -> str:
    return f"{b >> 20}M" if b >= 1 << 20 else f"{b >> 10}K"


def _blocks(m):
    """(mm, block start) of every block wholly inside a VMA of a live process."""
    size = m.g.cont_ptes * m.g.page_size
    for p in m.kernel.procs:
        if not p.alive:
            continue
        for v in p.vmas:
            for start in range(-(-v.start // size) * size, v.end - size + 1, size):
                yield p.mm, start


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(setup=SETUP, prefix=st.sampled_from(PREFIXES), program=PROGRAM)
@example(setup={"kernel": "v7.3", "granule": "4K", "policy": "never"}, prefix=PREFIXES[0], program=[])
@example(setup={"kernel": "v6.12", "granule": "16K", "policy": "never"}, prefix=PREFIXES[0], program=[])
def test_foldable_holds_exactly_when_trying_to_fold_the_last_entry_folds(setup, prefix, program):
    """engine/explain.py explain_block() against arch/arm64/mm/contpte.c
    contpte_try_fold() -> __contpte_try_fold(): a block the explainer calls
    foldable is folded by trying to fold its last entry, and no other is."""
    block = {"4K": 64 << 10, "16K": 2 << 20}[setup["granule"]]
    m = Machine(MachineConfig(check="off", thp="never", mthp={_size(block): "always"}, **setup))
    src = prefix.replace("4B", _size(4 * block)).replace("2B", _size(2 * block))
    for op in parse(src.replace("B", _size(block)), "prefix").ops:
        m.apply(op)
    for choice in program:
        op = to_op(m, choice)
        if op is not None:
            with contextlib.suppress(ScenarioError):  # an op the state refuses: skip it
                m.apply(op)
    arch = m.arch
    arch.fold_policy = None  # try as the kernel does (the run may have used "never")
    n, ps = m.g.cont_ptes, m.g.page_size
    seen = set()
    for mm, start in _blocks(m):
        ex = explain_block(arch, mm, start)
        if ex.folded or not any(ex.entries):
            continue
        saved = m.state()
        arch.contpte_try_fold(mm, start + (n - 1) * ps, ex.entries[-1])
        folded = explain_block(arch, mm, start).folded
        m.restore(saved)
        assert folded == ex.foldable, (hex(start), [r.kind for r in ex.reasons], ex.entries)
        seen.add(ex.foldable)
    if setup["policy"] == "never" and prefix == PREFIXES[0] and not program:
        assert True in seen  # the unfolded block is foldable, and the fold folds it


# --- the folded-block count: one definition, also behind the exports ----------------------------

def test_the_exports_count_a_misprogrammed_block_as_the_summaries_do():
    """engine.export (ptlab show --format json, the capture comparison) lists folded
    blocks from the same definition as the counts: all of them agree on a block whose
    entry 3 lost PTE_CONT, and on the block's neighbours."""
    from engine.export import cont_block_starts, to_json

    m = run("mthp 64K=always\nmmap b 128K\ntouch b write\n", "v6.12").machine
    p0 = m.kernel.procs[0]
    b = p0.regions["b"][0]
    blocks = [b, b + m.g.cont_pte_size]
    assert cont_block_starts(p0.mm.pt, m.g) == blocks
    t, i = p0.mm.pt.locate(b + 3 * m.g.page_size)
    t[i] &= ~PTE_CONT
    assert cont_block_starts(p0.mm.pt, m.g) == blocks[1:]
    j = to_json(p0.mm.pt, m.layout)
    assert j["summary"]["cont_blocks"] == 1 == m.cont_blocks() == _counts(m)[1] == _counts(m)[2]
    assert [blk["folded"] for blk in j["blocks"]] == [False, True]


# --- which descriptors did these events write (engine.writes) -----------------------------------

def test_descriptor_writes_reads_each_kind_from_its_own_fields():
    from engine.writes import Write, changes_block, descriptor_writes, may_write, written, written_values

    evs = [("pte_write", 0x1000, 1, 2, "store", "p0"),
           ("pte_read", 0x1000, 2, "p0"),
           ("hw_update", 0x12000, 3, 4, "p1"),  # (mm is the 4th field here, the 5th in the others)
           ("pmd_write", 0x200000, 0, 5, "xchg", "p0"),
           ("pte_write", 0x1000, 2, 7, "xchg", "p0")]
    assert list(descriptor_writes(evs)) == [
        Write("p0", 0x1000, 1, 2, False), Write("p1", 0x12000, 3, 4, False),
        Write("p0", 0x200000, 0, 5, True), Write("p0", 0x1000, 2, 7, False)]
    assert written(evs) == {("p0", 0x1000), ("p1", 0x12000), ("p0", 0x200000)}
    assert written_values(evs) == {("p0", 0x1000): 7, ("p1", 0x12000): 4, ("p0", 0x200000): 5}
    assert may_write({"pmd_writes": 1}) and may_write({"hw_update": 2}) and not may_write({"pte_reads": 9})
    pmd = 2 << 20
    assert changes_block(evs, "p0", 0, 0x10000, pmd)
    assert changes_block(evs, "p1", 0x10000, 0x20000, pmd)
    assert not changes_block(evs, "p0", 0x10000, 0x20000, pmd)
    assert changes_block(evs, "p0", 0x210000, 0x220000, pmd)  # under the PMD entry written
    assert not changes_block([("pte_write", 0x1000, 5, 5, "store", "p0")], "p0", 0, 0x10000, pmd)


def test_the_overlay_and_the_last_step_s_writes_are_what_the_op_left():
    """Session.overlay() after an op's last event shows every descriptor it wrote with the
    value the machine holds after the op; changed_by_last_step() names the same ones."""
    scn = parse("mthp 64K=always\nmmap a 128K\ntouch a write\nmprotect a +0 64K r\n", "t")
    s = Session(lambda: Machine(scn.config()), scn.ops)
    s.run()
    k = 2  # the mprotect: an unfold, the writes, a refold
    events = s.events_of(k)
    last = max(j for j, ev in enumerate(events) if ev[0] in ("pte_write", "hw_update", "pmd_write"))
    assert last + 1 < len(events)  # (returns follow: the position after it is inside the op)
    s.seek(Position(k, last + 1))
    ov = s.overlay()
    s.seek(k + 1)
    after = {(p, a): s.pte(p, a) for p, a in ov}
    assert ov == after and len(ov) == 16
    assert s.changed_by_last_step() == set(ov)


def test_a_watchpoint_stops_at_an_op_that_writes_only_a_pmd():
    """A THP fault and mprotect of a whole THP write only the PMD (counter pmd_writes):
    the watchpoint's pre-filter asked for a counter "pmd_write" nothing counts and skipped them."""
    scn = parse("thp always\nmmap a 2M\ntouch a write\nmprotect a +0 2M r\ntouch a read\n", "pmd")
    s = Session(lambda: Machine(scn.config()), scn.ops)
    s.run()
    a = s.machine.kernel.procs[0].regions["a"][0]
    assert s.records[2].counters.get("pte_writes", 0) == 0 and s.records[2].counters["pmd_writes"]
    s.seek(0)
    s.add_breakpoint(f"watch:{a:#x}")
    hits = [s.continue_() for _ in range(4)]
    # the fault's PMD; mprotect's two (get_and_clear, then the new one); then the end
    assert [h and (h.op, h.event[0]) for h in hits] == [(1, "pmd_write"), (2, "pmd_write"), (2, "pmd_write"),
                                                         None]


# --- since when does this block look like this (engine.queries.since_op) -------------------------

SINCE = ("mthp 64K=always\nmmap a 256K\ntouch a write\nmadvise a +64K 64K dontneed\n"
         "touch a +64K 4K read\nmprotect a +128K 64K r\n")


def test_since_op_names_the_last_op_that_changed_each_block():
    from engine.queries import since_op
    from tui.screens import inspector_pane

    assert inspector_pane.since_op is since_op  # the inspector asks the engine
    scn = parse(SINCE, "t")
    s = Session(lambda: Machine(scn.config()), scn.ops)
    s.run()
    a = s.machine.kernel.procs[0].regions["a"][0]
    blk = 64 << 10
    # block 0 and 3: faulted by op 1 only; block 1: zapped by op 2, refaulted by op 3 (the
    # last change); block 2: mprotect, op 4
    assert [since_op(s, "p0", a + i * blk).op for i in range(4)] == [1, 3, 4, 1]
    assert since_op(s, "p0", a + 2 * blk).text == "in this state since op 5 (mprotect a +128K 64K r)"
    s.seek(3)  # before the refault: op 2's zap is the last change of block 1
    assert since_op(s, "p0", a + blk).op == 2 and s.position == Position(3)
    assert since_op(s, "p0", a + 2 * blk).op == 1


# --- where do two runs part (engine.queries.first_divergence) ------------------------------------

def _session(src, **config):
    import dataclasses

    scn = parse(src, "t")
    cfg = dataclasses.replace(scn.config(), **config)
    s = Session(lambda: Machine(cfg), scn.ops, meta={})
    s.run()
    return s


def test_first_divergence_of_tables_costs_and_length():
    from engine.queries import COSTS, LENGTH, TABLES, FirstDivergence, first_divergence

    a = _session(SINCE)
    assert first_divergence(a, _session(SINCE)) == FirstDivergence(None)
    # no contpte: op 2 (touch) maps the same pages unfolded
    assert first_divergence(a, _session(SINCE, kernel="baseline")) == FirstDivergence(1, TABLES)
    # another CPU: the same tables, other cycles from the first op that costs anything
    other_cpu = _session(SINCE, cpu="apple-m2")
    assert first_divergence(a, other_cpu) == FirstDivergence(None)
    assert first_divergence(a, other_cpu, costs=True) == FirstDivergence(1, COSTS)
    short = _session(SINCE)
    short.seek(0)
    short.records = list(short.records[:3])  # a run that stopped after 3 ops
    assert first_divergence(a, short) == first_divergence(short, a) == FirstDivergence(3, LENGTH)


def test_first_divergence_of_an_op_that_fails_in_one_run():
    import json
    from pathlib import Path

    from engine.ptep_machine import ApiMachine, ops_from_vector_trace
    from engine.queries import ERROR, first_divergence
    from engine.session import SessionError

    trace = json.loads((Path(__file__).parent / "data" / "ptep-vectors.json").read_text())["traces"][1]
    ops = ops_from_vector_trace(trace)
    a = Session(lambda: ApiMachine(trace["granule"], "v7.0", trace["cpu"]), ops)
    b = Session(lambda: ApiMachine(trace["granule"], "v6.9", trace["cpu"]), ops)
    a.run()
    with contextlib.suppress(SessionError):
        b.run()
    d = first_divergence(a, b)
    assert (d.op, d.why, d.side) == (70, ERROR, 1) and "test_and_clear_young_ptes" in d.error


def test_compare_the_tui_and_diff_report_the_same_first_divergence(tmp_path, capsys):
    """ptlab compare (engine.compare_configs), the TUI's comparison (tui.variants) and ptlab diff
    all name the op engine.queries.first_divergence names."""
    import json

    from engine.compare_configs import Run, compare_sessions
    from tui.cli import main
    from tui.variants import first_divergence as tui_first

    a, b = _session(SINCE), _session(SINCE, kernel="baseline")
    c = compare_sessions([Run({"kernel": "v7.0"}, a), Run({"kernel": "baseline"}, b)])
    assert c.first_divergence is not None and c.first_divergence.op == 1
    assert tui_first(a, b) == (1, "page tables differ after this op")
    f = tmp_path / "s.pts"
    f.write_text(SINCE)
    outs = {}
    for name, extra in (("a", []), ("b", ["--kernel", "baseline"]), ("c", ["--cpu", "apple-m2"])):
        assert main(["run", str(f), "--save", str(tmp_path / f"{name}.ptsnap"), *extra]) == 0
    capsys.readouterr()
    for other in ("b", "c"):
        assert main(["diff", str(tmp_path / "a.ptsnap"), str(tmp_path / f"{other}.ptsnap"), "--json"]) == 1
        outs[other] = json.loads(capsys.readouterr().out)["first_divergence"]
    assert (outs["b"]["op"], outs["b"]["reason"]) == (2, "the page tables differ after it")
    # the same tables under another CPU: the costs part them, from op 2 on (the cycles)
    assert (outs["c"]["op"], outs["c"]["reason"]) == (2, "its costs differ")
    assert set(outs["c"]["counters"]) == {"cycles"}
