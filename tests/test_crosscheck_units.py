# SPDX-License-Identifier: GPL-2.0-only
"""crosscheck without QEMU: the translator, the trace and pagemap parsers, the
comparison, the random generator and reducer, and the CLI's one-line errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from crosscheck import randomgen, reduce
from crosscheck.kernels import KernelBuild
from crosscheck.observation_diff import Divergence, compare_op, compare_runs, oa_mask
from crosscheck.observe import OpObservation, PageInfo
from crosscheck.runner import TargetResult
from crosscheck.trace import KernelRun, TraceError, parse_pagemap, parse_trace
from crosscheck.translate import SHIFT, Untranslatable, c_source, engine_addr, guest_addr, plan, rewrite_ops
from engine.scenario import parse
from tui import cli
from tui.commands import crosscheck as cmd


def scn(body: str, name: str = "t") -> object:
    return parse(f"# test\n{body}", f"{name}.pts", name)


def plan_of(body: str, **kw: object):
    return plan(scn(body), "v7.0", "qemu-max", "4K", **kw)


# ---------------------------------------------------------------------------- translator


def test_translator_c_text_for_each_verb():
    p = plan_of("mthp 64K=always\n"
                "mmap buf 128K at 0x20000000\n"          # line 3
                "touch buf write\n"
                "mremap buf 0x20400000\n"
                "mprotect buf +0 4K r\n"
                "madvise buf +64K 64K dontneed\n"
                "fork child\n"                          # line 8
                "switch child\n"
                "exit\n"                                # line 10
                "split buf +0\n"
                "munmap buf +4K 4K\n"
                "mmap big 2M at 0x20800000\n"
                "touch big +0 4K write\n"
                "collapse big +0\n")
    body = {o.line: o.c_body for o in p.ops}
    assert body[3] == ("int e; if ((e = do_mmap(0x20000000UL, 0x20000UL, PROT_READ|PROT_WRITE, "
                       "MAP_PRIVATE|MAP_ANONYMOUS, NULL))) return e; return 0;")
    assert body[4] == "return touch(0x20000000UL, 0x20020000UL, 1);"
    assert body[5] == ("return syscall(SYS_mremap, 0x20000000UL, 0x20000UL, 0x20000UL, "
                       "MREMAP_MAYMOVE|MREMAP_FIXED, 0x20400000UL) == (long)0x20400000UL ? 0 : errno;")
    assert body[6] == "return sys0(mprotect((void *)0x20400000UL, 0x1000UL, PROT_READ));"
    assert body[7] == "return sys0(madvise((void *)0x20410000UL, 0x10000UL, MADV_DONTNEED));"
    assert body[11] == "return do_split(0x20400000UL, 0x20401000UL, 0);"
    assert body[12] == "return sys0(munmap((void *)0x20401000UL, 0x1000UL));"
    assert body[15] == "return -sys0(madvise((void *)0x20800000UL, 0x200000UL, MADV_COLLAPSE));"
    fork = next(o for o in p.ops if o.line == 8)
    ex = next(o for o in p.ops if o.line == 10)
    assert (fork.fork_child, ex.exit_proc, ex.proc) == (1, 1, 1)
    assert p.procs == ["p0", "child"] and p.parents == [-1, 0]
    assert p.knobs == [("/sys/kernel/mm/transparent_hugepage/hugepages-64kB/enabled", "always")]
    assert p.rewrites == [] and not p.needs_swap
    src = c_source([p])
    assert '#include "runtime.c"' in src and "case 8: { /* split buf +0 */" in src
    assert "static const int s0_parent[] = {-1, 0};" in src


def test_translator_shifts_the_top_half():
    p = plan_of("mmap buf 64K\ntouch buf read\n")
    a = p.dumps[0][0][1]  # guest address of the engine's top-down placement
    assert a + SHIFT >= 1 << 47  # the engine, like the kernel, maps top-down from the 48-bit top
    assert engine_addr(a) == a + SHIFT and guest_addr(a + SHIFT) == a
    assert f"do_mmap({a:#x}UL, 0x10000UL" in p.ops[0].c_body
    assert p.ops[1].c_body == f"return touch({a:#x}UL, {a + 0x10000:#x}UL, 0);"
    assert guest_addr(0x20000000) == 0x20000000 == engine_addr(0x20000000)
    assert SHIFT % (1 << 30) == 0


@pytest.mark.parametrize(("body", "line", "words"), [
    ("mmap buf 64K\nnuma buf\n", 4, "task_numa_work"),
    ("mmap buf 64K\ntouch buf write\ngup buf\n", 5, "'gup'"),
    ("mmap buf 64K\ntouch buf write smmu\n", 4, "SMMU"),
    ("mmap buf 64K\ntouch buf write\nreclaim\n", 5, "reclaim of every process"),
])
def test_translator_refusals_name_the_line(body, line, words):
    s = scn("kernel v7.0\n" + body)
    with pytest.raises(Untranslatable) as e:
        rewrite_ops(list(s.ops))
    assert e.value.line == line and words in str(e.value)
    with pytest.raises(Untranslatable):
        plan(s, "v7.0", "qemu-max", "4K")


def test_reclaim_runs_as_pageout_on_both_sides():
    s = scn("mmap buf 64K\ntouch buf write\nreclaim buf\n")
    ops, notes = rewrite_ops(list(s.ops))
    assert (ops[2].verb, ops[2].args["advice"], ops[2].args["name"], ops[2].line) == ("madvise", "pageout",
                                                                                       "buf", 4)
    assert notes == ["line 4: 'reclaim buf' runs as madvise buf pageout (MADV_PAGEOUT, the closest real "
                     "equivalent) on both sides"]
    p = plan(s, "v7.0", "qemu-max", "4K")
    assert p.rewrites == notes and p.needs_swap
    assert "MADV_PAGEOUT" in p.ops[2].c_body


def test_policy_other_than_mainline_needs_policy_ok():
    s = scn("policy scan\nmmap buf 64K\ntouch buf write\n")
    with pytest.raises(Untranslatable, match="mainline heuristic only"):
        plan(s, "v7.0", "qemu-max", "4K")
    assert len(plan(s, "v7.0", "qemu-max", "4K", policy_ok=True).ops) == 2


@pytest.mark.skipif(shutil.which("aarch64-linux-gnu-gcc") is None,
                    reason="aarch64-linux-gnu-gcc not installed (apt-get install gcc-aarch64-linux-gnu)")
def test_guest_program_compiles(tmp_path):
    from crosscheck.runner import compile_program

    plans = [plan_of("mthp 64K=always\nmmap buf 64K at 0x20000000\ntouch buf write\nfork c\n"
                     "touch buf +0 4K write\nreclaim buf\n"),
             plan_of("mmap f 64K file shared\ntouch f write\nread f\n")]
    blob = compile_program(plans, tmp_path)
    assert blob[:4] == b"\x7fELF" and blob[18] == 183  # EM_AARCH64


# ---------------------------------------------------------------------------- trace parser

MM_A, MM_B = 0xFFFF00000A000000, 0xFFFF00000B000000


def _ev(pid: int, t: float, event: str, rest: str, comm: str = "prog") -> str:
    return f"            {comm}-{pid}     [000] .....   {t:.6f}: {event}: {rest}"


def _mark(pid: int, t: float, text: str) -> str:
    return _ev(pid, t, "tracing_mark_write", text)


TRACE_PLAN_BODY = ("mthp 64K=always\nmmap buf 64K at 0x20000000\ntouch buf write\nfork child\n"
                   "touch buf +0 4K write\n")
PTE1 = 0x00E8000080010F43 | 1 << 52
PTE2 = 0x0060000080010FC3 | 1 << 52


def trace_lines() -> list[str]:
    c = "(contpte_{}+0x0/0x1c0) a0={:#x} a1={:#x} a3={:#x} v16=0x0"
    return [
        "# tracer: nop",
        _mark(100, 1.0, "ptlab 0 pid 0 100"),
        _mark(100, 1.1, "ptlab 0 op 0"),
        _mark(100, 1.2, "ptlab 0 dump 0"),
        _mark(100, 1.3, "ptlab 0 done 0"),
        _mark(100, 2.0, "ptlab 0 op 1"),
        _ev(100, 2.1, "fault", "(handle_mm_fault+0x0/0x2a0) addr=0x20000000 flags=0x1255"),
        _ev(100, 2.2, "fault", "(handle_mm_fault+0x0/0x2a0) addr=0x20000008 flags=0x1255"),  # a retry
        _ev(100, 2.3, "fault", "(handle_mm_fault+0x0/0x2a0) addr=0x7ffff000 flags=0x1254"),  # its stack
        _ev(100, 2.4, "c7", c.format("set_ptes", MM_A, 0x20000000, 0x10)),
        _ev(100, 2.5, "r7", "(set_ptes+0x5c/0x80 <- contpte_set_ptes)"),
        _ev(1, 2.6, "c7", c.format("set_ptes", MM_A, 0x20000000, 0x10), comm="init"),  # not ours
        _mark(100, 2.7, "ptlab 0 dump 1"),
        _ev(100, 2.8, "vmnp", f"(vm_normal_page+0x0/0xb0) addr=0x20000000 pte={PTE1:#x} mm={MM_A:#x}"),
        _ev(100, 2.9, "vmnp", f"(vm_normal_page+0x0/0xb0) addr=0x7fff0000 pte={PTE1:#x} mm={MM_A:#x}"),
        _mark(100, 3.0, "ptlab 0 done 1"),
        _mark(100, 3.1, "ptlab 1 op 0"),  # another target's markers: ignored
        _ev(100, 3.2, "c7", c.format("set_ptes", MM_A, 0x20000000, 0x10)),
        _mark(100, 4.0, "ptlab 0 op 2"),
        _ev(100, 4.1, "c2", "(contpte_ptep_get+0x0/0x100) a0=0xffff000012345678 a1=0x1 a3=0x0 v16=0x0"),
        _ev(100, 4.2, "r2", "(ptep_get+0x10/0x20 <- contpte_ptep_get)"),
        _ev(100, 4.3, "c9", c.format("wrprotect_ptes", MM_A, 0x20000000, 0)),
        _ev(100, 4.4, "r9", "(wrprotect_ptes+0x10/0x20 <- contpte_wrprotect_ptes)"),
        _ev(100, 4.5, "c7", c.format("set_ptes", MM_B, 0x20000000, 0x10)),  # the child's mm, by the parent
        _ev(100, 4.6, "r7", "(copy_pte_range+0x10/0x900 <- contpte_set_ptes)"),
        _mark(101, 4.7, "ptlab 0 pid 1 101"),
        _mark(100, 4.8, "ptlab 0 dump 2"),
        _ev(100, 4.9, "vmnp", f"(vm_normal_page+0x0/0xb0) addr=0x20000000 pte={PTE2:#x} mm={MM_A:#x}"),
        _ev(101, 5.0, "vmnp", f"(vm_normal_page+0x0/0xb0) addr=0x20000000 pte={PTE2:#x} mm={MM_B:#x}"),
        _mark(100, 5.1, "ptlab 0 done 2"),
        _mark(100, 6.0, "ptlab 0 op 3"),
        _ev(100, 6.1, "fault", "(handle_mm_fault+0x0/0x2a0) addr=0x20000000 flags=0x1255"),
        _ev(100, 6.2, "c3", f"(__contpte_try_unfold+0x0/0x80) a0={MM_A:#x} a1=0x20000000 a3=0x0 v16=0x0"),
        _ev(100, 6.3, "c1", f"(contpte_convert.isra.0+0x0/0x1a0) a0={MM_A:#x} a1=0x20003000 "
            f"a3={PTE1 & ~(1 << 52):#x} v16=0x0"),
        _ev(100, 6.4, "r1", "(__contpte_try_unfold+0x40/0x80 <- contpte_convert.isra.0)"),
        _ev(100, 6.5, "r3", "(wp_page_copy+0x40/0x800 <- __contpte_try_unfold)"),
        _mark(100, 6.6, "ptlab 0 end"),
    ]


def test_parse_trace_exact_observations():
    p = plan_of(TRACE_PLAN_BODY)
    kr = parse_trace(trace_lines(), 0, p)
    assert kr.completed and kr.error == "" and kr.pids == {100: 0, 101: 1}
    assert kr.ops[0] == OpObservation()
    assert kr.ops[1] == OpObservation(calls=[("contpte_set_ptes", 0, 0x20000000)],
                                      faults=[(0, 0x20000000, True)], ptes={(0, 0x20000000): PTE1})
    assert kr.ops[2] == OpObservation(
        calls=[("contpte_ptep_get", 0, None), ("contpte_wrprotect_ptes", 0, 0x20000000),
               ("contpte_set_ptes", 1, 0x20000000)],
        ptes={(0, 0x20000000): PTE2, (1, 0x20000000): PTE2})
    # only the outermost call; the nested convert is kept, its address aligned to the block
    assert kr.ops[3] == OpObservation(calls=[("__contpte_try_unfold", 0, 0x20000000)],
                                      converts=[(0, 0x20000000, False)], faults=[(0, 0x20000000, True)])


def test_parse_trace_error_marker_and_no_end():
    p = plan_of(TRACE_PLAN_BODY)
    lines = trace_lines()[:6] + [_mark(100, 2.1, "ptlab 0 error 1 ENOMEM mmap failed")]
    kr = parse_trace(lines, 0, p)
    assert not kr.completed
    assert kr.error == "op 1: ENOMEM mmap failed" and kr.ops[1].error == "ENOMEM mmap failed"


def test_parse_pagemap():
    p = plan_of(TRACE_PLAN_BODY)
    kr = KernelRun([OpObservation() for _ in p.ops])
    parse_pagemap(["1 0 100 P 20000000 80010 80010 16 8000",
                   "1 0 100 P 20001000 80011 80010 16 8000",
                   "1 0 100 P 20002000 7f000 7f000 1 1000000",  # KPF_ZERO_PAGE
                   "3 1 101 S 20003000 0 2a",
                   "9 0 100 P 20000000 1 1 1 0",  # no such op: ignored
                   "short line"], kr)
    assert kr.ops[1].pages == {(0, 0x20000000): PageInfo("P", 0, 16, False, 0x80010),
                               (0, 0x20001000): PageInfo("P", 1, 16, False, 0x80010),
                               (0, 0x20002000): PageInfo("P", 0, 1, True, 0x7F000)}
    assert kr.ops[3].pages == {(1, 0x20003000): PageInfo("S", 0x2A)}
    with pytest.raises(TraceError, match="malformed pagemap line"):
        parse_pagemap(["1 0 100 P 2000zz00 1 1 1 0"], kr)


# ---------------------------------------------------------------------------- comparison

FUNCS = {"contpte_set_ptes", "contpte_ptep_get", "__contpte_try_unfold", "contpte_convert"}
PROCS = ["p0", "child"]
VA = 0x20000000


def cmp(k: OpObservation, e: OpObservation, **kw: object) -> list[Divergence]:
    return compare_op(3, 7, "touch buf write", k, e, FUNCS, PROCS, 12, **kw)


def test_compare_agree_and_engine_calls_filtered_to_the_kernels_out_of_line_set():
    k = OpObservation(calls=[("contpte_set_ptes", 0, VA)], ptes={(0, VA): PTE1})
    e = OpObservation(calls=[("contpte_set_ptes", 0, VA), ("contpte_inlined_here", 0, VA)],
                      ptes={(0, VA): PTE1})
    assert cmp(k, e) == []


def test_compare_calls():
    k = OpObservation(calls=[("contpte_ptep_get", 0, None), ("__contpte_try_unfold", 0, VA)])
    e = OpObservation(calls=[("contpte_ptep_get", 0, None), ("contpte_set_ptes", 1, VA)])
    (d,) = cmp(k, e)
    assert (d.op, d.line, d.what, d.addr) == (3, 7, "calls", VA)
    assert d.message == ("contpte call 2 of 2 (kernel) / 2 (engine): kernel __contpte_try_unfold(p0, "
                         "0x20000000), engine contpte_set_ptes(child, 0x20000000)")
    assert d.kernel == ["contpte_ptep_get(p0)", "__contpte_try_unfold(p0, 0x20000000)"]


def test_compare_converts_and_faults():
    k = OpObservation(converts=[(0, VA, False)], faults=[(0, VA, True), (0, VA + 4096, False)])
    e = OpObservation(converts=[(0, VA, True)], faults=[(0, VA, True)])
    d1, d2 = cmp(k, e)
    assert (d1.what, d1.message) == ("converts", "contpte_convert 1: kernel unfold at 0x20000000, engine "
                                                 "fold at 0x20000000 (1 vs 1 converts)")
    assert (d2.what, d2.addr, d2.message) == ("faults", VA + 4096, "page fault 2: kernel read at 0x20001000, "
                                              "engine none (2 vs 1 faults)")


def test_compare_pte_bits_by_name_except_the_output_address():
    cont = 1 << 52
    assert cmp(OpObservation(ptes={(0, VA): PTE1}), OpObservation(ptes={(0, VA): PTE1 ^ 0x7F000})) == []
    (d,) = cmp(OpObservation(ptes={(0, VA): PTE1}), OpObservation(ptes={(0, VA): PTE1 & ~cont}))
    assert (d.what, d.kernel, d.engine) == ("pte", PTE1, PTE1 & ~cont)
    assert d.message == "p0 0x20000000: descriptor bits differ: CONT"
    (d,) = cmp(OpObservation(ptes={(0, VA): PTE1}), OpObservation())
    assert d.message == "p0 0x20000000: present in the kernel only"
    k = OpObservation(ptes={(0, VA): PTE1 ^ (1 << 55) ^ (1 << 10)})
    (d,) = cmp(k, OpObservation(ptes={(0, VA): PTE1}))
    assert d.message == "p0 0x20000000: descriptor bits differ: DIRTY, AF"


def test_compare_lpa2_output_address_bits():
    assert oa_mask(12) == 0xFFFFFFFFF000 and oa_mask(12, lpa2=True) == 0xFFFFFFFFF000 | 0x300
    assert oa_mask(16) == 0xFFFFFFFF0000 | 0xF000
    k, e = OpObservation(ptes={(0, VA): PTE1 | 0x300}), OpObservation(ptes={(0, VA): PTE1 & ~0x300})
    assert cmp(k, e, lpa2=True) == []
    (d,) = cmp(k, e, lpa2=False)
    assert d.message == "p0 0x20000000: descriptor bits differ: other bits 0x300"


def test_compare_folio_structure():
    def pages(*items: tuple[int, PageInfo]) -> OpObservation:
        return OpObservation(pages={(0, VA + i * 4096): p for i, p in items})

    # the same structure at other physical addresses agrees
    k = pages((0, PageInfo("P", 0, 16, False, 0x100)), (1, PageInfo("P", 1, 16, False, 0x100)))
    e = pages((0, PageInfo("P", 0, 16, False, 0x900)), (1, PageInfo("P", 1, 16, False, 0x900)))
    assert cmp(k, e) == []
    d1, d2 = cmp(k, pages((0, PageInfo("P", 0, 16, False, 0x900)), (1, PageInfo("P", 0, 1, False, 0x901))))
    assert d1.message == "p0 0x20001000: kernel page 1 of a 16-page folio, engine page 0 of a 1-page folio"
    assert d2.message == "p0 0x20001000: the previous page is in the same folio in the kernel only"
    # same offsets and sizes, but two different folios where the kernel has one
    (d,) = cmp(pages((0, PageInfo("P", 0, 1, False, 0x100)), (1, PageInfo("P", 0, 1, False, 0x100))),
               pages((0, PageInfo("P", 0, 1, False, 0x900)), (1, PageInfo("P", 0, 1, False, 0x905))))
    assert d.message == "p0 0x20001000: the previous page is in the same folio in the kernel only"
    (d,) = cmp(pages((0, PageInfo("P", 0, 1, True, 7))), pages((0, PageInfo("S", 5))))
    assert d.message == "p0 0x20000000: kernel the zero page, engine a swap entry"


def test_compare_swap_contiguity():
    k = OpObservation(pages={(0, VA): PageInfo("S", 40), (0, VA + 4096): PageInfo("S", 41)})
    assert cmp(k, OpObservation(pages={(0, VA): PageInfo("S", 7), (0, VA + 4096): PageInfo("S", 8)})) == []
    (d,) = cmp(k, OpObservation(pages={(0, VA): PageInfo("S", 7), (0, VA + 4096): PageInfo("S", 9)}))
    assert d.message == "p0 0x20001000: swap offset follows the previous page's in the kernel only"


def test_compare_error_and_runs():
    (d,) = cmp(OpObservation(error="ENOMEM"), OpObservation())
    assert (d.what, d.message) == ("error", "the op failed: kernel ENOMEM, engine ok")
    k = [OpObservation(ptes={(0, VA): PTE1}), OpObservation(calls=[("contpte_set_ptes", 0, VA)])]
    e = [OpObservation(ptes={(0, VA): PTE1}), OpObservation()]
    c = compare_runs(k, e, [(3, "mmap"), (4, "touch")], FUNCS, PROCS, 12)
    assert (c.ops_compared, c.ptes_compared, c.calls_compared, c.agrees) == (2, 1, 1, False)
    assert [(d.op, d.line, d.what) for d in c.divergences] == [(1, 4, "calls")]
    assert c.divergences[0].as_dict()["addr"] == "0x20000000"


# ---------------------------------------------------------------------------- random scenarios


def test_random_is_deterministic_and_translates():
    a = randomgen.generate(12, 7)
    b = randomgen.generate(12, 7)
    assert [x.text() for x in a] == [x.text() for x in b]
    assert [x.text() for x in a] != [x.text() for x in randomgen.generate(12, 8)]
    assert randomgen.generate_one(7, 5).text() == a[5].text()
    verbs = {"mmap", "touch", "mprotect", "munmap", "madvise", "mremap", "fork", "switch", "exit",
             "split", "collapse"}
    for rs in a:
        s = rs.scenario()
        assert s.name == rs.name and rs.header[0] == "granule 4K" and rs.header[1].startswith("mthp ")
        assert {op.verb for op in s.ops} <= verbs
        rewrite_ops(list(s.ops))  # no refusal
        assert len(plan(s, "v6.10", "qemu-max", "4K").ops) == len(rs.ops)


def test_random_16k_sizes_and_mthp():
    for rs in randomgen.generate(6, 3, "16K"):
        s = rs.scenario()
        assert rs.header[0] == "granule 16K"
        for size in rs.header[1].split()[1:]:
            assert size.split("=")[0] in randomgen.MTHP_SIZES["16K"]
        for op in s.ops:
            if op.verb == "mmap":
                assert op.args["size"] % 16384 == 0
        assert randomgen.translates(rs)


def test_random_rejects_other_granules():
    with pytest.raises(ValueError, match="4K or 16K"):
        randomgen.generate(1, 1, "64K")


class _Res:
    def __init__(self, divs: list[Divergence]):
        from crosscheck.observation_diff import Comparison

        self.comparison = Comparison(divs)


def test_reducer_keeps_the_first_divergence_and_writes_a_scenario(tmp_path):
    rs = randomgen.RandomScenario("random-9-4", ["granule 4K", "mthp 64K=always"], [
        "mmap a 64K", "touch a write", "mmap b 64K", "touch b read", "mprotect a +0 4K r",
        "touch b write", "madvise b dontneed", "mprotect a +0 4K rw"])
    calls = []

    def fake_run(scenarios, kr, tag):  # diverges at the first mprotect once 'touch a write' precedes it
        calls.append(tag)
        out = []
        for s in scenarios:
            texts = [op.text.strip() for op in s.ops]
            if {"mmap a 64K", "touch a write", "mprotect a +0 4K r"} <= set(texts):
                k = texts.index("mprotect a +0 4K r")
                out.append(_Res([Divergence(k, 0, "mprotect a +0 4K r", "pte", VA, "bits differ: CONT")]))
            else:
                out.append(_Res([]))
        return out

    class KR:
        results = fake_run([rs.scenario()], None, "first")
        profile = "v6.10"
        build = KernelBuild("debian-x", "x", "6.12", "arm64", 4096, Path("/nonexistent"))

    (red,) = reduce.minimize_all([rs], [KR], fake_run, tmp_path, 9, rounds=10)
    paths = [red.path]
    assert paths == [tmp_path / "crosscheck-repro-9-0.pts"]
    assert red.as_dict()["signature"] == ["pte", "mprotect"] and red.same == []
    red.same = [f"random-9-{i}" for i in range(1, 11)]
    assert cmd.reproducer_line(red.as_dict()) == (
        f"reproducer: {paths[0]} (3 ops, from random-9-4 on debian-x: pte at mprotect; the same in 10 more: "
        "random-9-1, random-9-2, random-9-3, random-9-4, random-9-5, random-9-6, random-9-7, random-9-8 ...)")
    s = parse(paths[0].read_text(), "r.pts", "r")
    assert [op.text.strip() for op in s.ops] == ["mmap a 64K", "touch a write", "mprotect a +0 4K r"]
    assert "first divergence: op 2 (mprotect a +0 4K r) pte" in paths[0].read_text().splitlines()[0]
    assert 1 < len(calls) <= 11 and all(t.startswith("-reduce") for t in calls[1:])


# ---------------------------------------------------------------------------- the command


NEEDS_TOOLS = pytest.mark.skipif(
    shutil.which("qemu-system-aarch64") is None or shutil.which("aarch64-linux-gnu-gcc") is None,
    reason="qemu-system-aarch64 or aarch64-linux-gnu-gcc not installed")


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(["crosscheck", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(("argv", "words"), [
    ((), "give one or more TARGETs"),
    (("--setup", "demo"), "--setup takes no targets"),
    (("demo", "--debian", "5.10"), "expected 6.12, 7.0, newest or all"),
    (("demo", "--granule", "64K"), "expected 4K or 16K"),
    (("demo", "--config", "x.config"), "--config goes with --kernel-image"),
    (("demo", "--policy", "scan"), "--policy goes with --kernel-image"),
    (("demo", "--kernel-image", "Image", "--debian", "6.12"), "not both"),
    (("demo", "--random", "3"), "TARGETs or --random N, not both"),
    (("--random", "0"), "1 <= N <= 10000"),
    (("demo", "--limit", "0"), "1 <= N <= 1000"),
    (("demo", "--timeout", "-1"), "0 < S <= 86400"),
    (("demo", "--kernel", "v9.99"), "unknown kernel profile 'v9.99'"),
    (("demo", "--kernel-image", "Image", "--policy", "nosuch"), "unknown policy 'nosuch'"),
    (("no-such-scenario",), "no built-in scenario 'no-such-scenario'"),
    (("check-12-numa-hint",), "check-12-numa-hint.pts:7: NUMA hinting scans"),
    (("check-14-lockless-race",), "check-14-lockless-race.pts:"),
    (("--random", "x"), "invalid int value"),
])
def test_cli_argument_errors_are_one_line(capsys, argv, words):
    code, out, err = run_cli(capsys, *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("ptlab") and words in err


def test_cli_refusals_name_file_and_line(capsys, tmp_path):
    f = tmp_path / "bare.pts"
    f.write_text("# x\nmmap buf 64K\ntouch buf write\nreclaim\n")
    code, _, err = run_cli(capsys, str(f))
    assert code == 2 and err == f"ptlab: {f}:4: reclaim of every process has no user-space equivalent in " \
                                "the guest (use 'reclaim NAME', which runs as MADV_PAGEOUT)\n"
    g = tmp_path / "pol.pts"
    g.write_text("# x\npolicy scan\nmmap buf 64K\ntouch buf write\n")
    code, _, err = run_cli(capsys, str(g))
    assert code == 2 and err.count("\n") == 1 and "a Debian kernel folds with the mainline heuristic" in err
    assert "--kernel-image IMAGE --policy scan" in err


def test_cli_json_error_object(capsys):
    code, out, err = run_cli(capsys, "check-12-numa-hint", "--json")
    assert code == 2 and json.loads(out)["exit_status"] == 2 and "check-12-numa-hint.pts:7" in err


def test_cli_missing_tools_say_what_to_install(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    code, _, err = run_cli(capsys, "check-01-anon-64k-fault")
    assert code == 2 and err.count("\n") == 1
    assert "qemu-system-aarch64, aarch64-linux-gnu-gcc and mkfs.xfs not found" in err
    assert "apt-get install qemu-system-arm gcc-aarch64-linux-gnu xfsprogs" in err


@NEEDS_TOOLS
def test_cli_missing_cache_says_run_setup(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("PTLAB_CACHE", str(tmp_path))
    code, _, err = run_cli(capsys, "check-01-anon-64k-fault")
    assert code == 2 and err.count("\n") == 1 and "run: ptlab crosscheck --setup" in err and "busybox" in err
    (tmp_path / "busybox").mkdir()
    (tmp_path / "busybox" / "busybox").write_bytes(b"x")
    code, _, err = run_cli(capsys, "check-01-anon-64k-fault", "--debian", "7.0")
    assert code == 2 and err == (f"ptlab: crosscheck: no cached Debian 7.0 kernel with 4K pages in "
                                 f"{tmp_path} (cached: none); run: ptlab crosscheck --setup\n")


def _image(tmp_path: Path, config: str) -> tuple[Path, Path]:
    blob = bytearray(0x100)
    blob[0x38:0x3C] = b"ARM\x64"
    img = tmp_path / "Image"
    img.write_bytes(bytes(blob) + b"Linux version 6.14.0-dev (me@host) #1")
    cfg = tmp_path / "config"
    cfg.write_text(config)
    return img, cfg


@NEEDS_TOOLS
def test_cli_user_image_without_contpte_or_kprobes(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("PTLAB_CACHE", str(tmp_path))
    (tmp_path / "busybox").mkdir()
    (tmp_path / "busybox" / "busybox").write_bytes(b"x")
    img, cfg = _image(tmp_path, "CONFIG_ARM64_4K_PAGES=y\nCONFIG_FTRACE=y\nCONFIG_FUNCTION_TRACER=y\n"
                                "# CONFIG_KPROBE_EVENTS is not set\nCONFIG_TRANSPARENT_HUGEPAGE=y\n")
    code, _, err = run_cli(capsys, "check-01-anon-64k-fault", "--kernel-image", str(img),
                           "--config", str(cfg))
    assert code == 2 and err.count("\n") == 1
    assert err == (f"ptlab: crosscheck: {img}: the kernel lacks CONFIG_ARM64_CONTPTE (contpte), "
                   "CONFIG_KPROBE_EVENTS (kprobe events); rebuild with them set\n")
    code, _, err = run_cli(capsys, "check-01-anon-64k-fault", "--kernel-image", str(img))
    assert code == 2 and "no kernel config (give --config FILE" in err
    code, _, err = run_cli(capsys, "check-01-anon-64k-fault", "--kernel-image", str(tmp_path / "nope"))
    assert code == 2 and err.count("\n") == 1 and "cannot read kernel image" in err


def test_escape_and_human_output():
    assert cmd.esc("ok text") == "ok text"
    assert cmd.esc("\x1b[31mred\r\n\u202e") == "\\x1b[31mred\\x0d\\x0a\\u202e"
    build = KernelBuild("debian-6.12.117+deb13-arm64", "6.12.117+deb13-arm64", "6.12", "arm64", 4096,
                        Path("/nonexistent"))
    from crosscheck.observation_diff import Comparison

    r1 = TargetResult("check-01", build.name, "v6.10", 4096, ops=2, engine_seconds=0.02, guest_seconds=0.3,
                      boot_seconds=12.0)
    d = Divergence(2, 6, "touch buf\x1b[2J write", "pte", VA, "p0 0x20000000: descriptor bits differ: CONT",
                   PTE1, PTE1 & ~(1 << 52))
    r2 = TargetResult("evil\x07name", build.name, "v6.10", 4096, verdict="diverge",
                      comparison=Comparison([d]), ops=3,
                      rewrites=["line 6: 'reclaim buf' runs as madvise buf pageout"])
    kr = cmd.KernelRun(build, "v6.10", [r1, r2], [12.04])
    lines: list[str] = []
    cmd.print_human([kr], lines.append)
    text = "\n".join(lines)
    assert all(ch == "\n" or ch.isprintable() for ch in text)
    assert lines[0] == ("debian-6.12.117+deb13-arm64 (4K pages): engine profile v6.10, CPU profile qemu-max, "
                        "boot 12.0 s")
    assert lines[1].split() == ["check-01", "agree", "2", "ops", "engine", "0.02", "s", "guest", "0.30", "s"]
    assert lines[2].split()[:3] == ["evil\\x07name", "1", "divergence"]
    assert lines[3] == ("    op 2 (line 6: touch buf\\x1b[2J write) pte: p0 0x20000000: descriptor bits "
                        "differ: CONT")
    assert lines[4] == f"      kernel {PTE1:#018x} (DIRTY UXN PXN CONT WRITE(DBM) NG AF USER VALID)"
    assert lines[5] == f"      engine {PTE1 & ~(1 << 52):#018x} (DIRTY UXN PXN WRITE(DBM) NG AF USER VALID)"
    assert lines[6] == "    rewrite: line 6: 'reclaim buf' runs as madvise buf pageout"
    assert lines[-1] == ("2 crosschecks on 1 kernel: 1 agree, 1 diverge, 0 errors; engine 0.02 s, "
                         "guest programs 0.30 s")
    assert cmd.exit_status([r1]) == 0 and cmd.exit_status([r1, r2]) == 1
    r3 = TargetResult("x", build.name, "v6.10", 4096, verdict="error", error="guest did not finish",
                      error_kind="guest")
    assert cmd.exit_status([r1, r2, r3]) == 2


def test_progress_is_silent_off_a_terminal(capsys):
    p = cmd.Progress(False, "k")
    p("booting")
    p.close()
    assert capsys.readouterr().err == ""



def test_progress_on_a_terminal_redraws_one_line_and_clears_it(capsys, monkeypatch):
    monkeypatch.setattr(cmd.Progress, "width", staticmethod(lambda: 80))
    p = cmd.Progress(True, "debian-6.12")
    p("booting debian-6.12\x1b[2J")
    p("guest ready")
    p.close()
    err = capsys.readouterr().err
    assert "\n" not in err and "\x1b" not in err
    assert err.startswith("\rdebian-6.12: booting debian-6.12\\x1b[2J")
    assert "\rdebian-6.12: guest running the targets" in err and err.endswith("\r" + " " * 80 + "\r")


def test_text_output_caps_divergences_per_target():
    from crosscheck.observation_diff import Comparison

    divs = [Divergence(k, k + 3, "touch buf write", "faults", VA, f"page fault {k}") for k in range(14)]
    r = TargetResult("t", "b", "v6.10", 4096, verdict="diverge", comparison=Comparison(divs), ops=14)
    lines = cmd.target_lines(r, 10)
    assert lines[0].split()[:3] == ["t", "14", "divergences"]
    assert lines[1] == "    op 0 (line 3: touch buf write) faults: page fault 0"
    assert len(lines) == 1 + 10 + 1 and lines[-1] == "    ... and 4 more (--json lists them all)"


def test_default_granule_follows_the_targets():
    a, b = scn("granule 16K\nmmap x 64K\n"), scn("granule 16k\nmmap y 64K\n")
    assert cmd.default_granule([a, b]) == "16K"
    assert cmd.default_granule([a, scn("mmap z 64K\n")]) == "4K"
    assert cmd.default_granule([scn("granule 64K\nmmap x 64K\n")]) == "4K"
    assert cmd.default_granule([]) == "4K"


def test_reducer_reduces_one_scenario_per_signature(tmp_path):
    def rs(i: int, extra: list[str]) -> randomgen.RandomScenario:
        ops = ["mmap a 64K", *extra, "touch a write"]
        return randomgen.RandomScenario(f"random-2-{i}", ["granule 4K"], ops)

    gen = [rs(0, ["mmap b 64K", "touch b read"]), rs(1, []), rs(2, ["mmap c 16K"])]

    def fake_run(scenarios, kr, tag):  # every scenario diverges at its touch of a, as a fault
        out = []
        for s in scenarios:
            texts = [op.text.strip() for op in s.ops]
            ok = "touch a write" in texts
            k = texts.index("touch a write") if ok else 0
            out.append(_Res([Divergence(k, 0, "touch a write", "faults", VA, "x")] if ok else []))
        return out

    class KR:
        results = fake_run([g.scenario() for g in gen], None, "first")
        profile = "v7.0"
        build = KernelBuild("debian-y", "y", "7.0", "arm64", 4096, Path("/nonexistent"))

    (red,) = reduce.minimize_all(gen, [KR], fake_run, tmp_path, 2)
    assert red.rs.name == "random-2-1" and red.same == ["random-2-0", "random-2-2"]
    assert red.ops == ["touch a write"] and red.path == tmp_path / "crosscheck-repro-2-1.pts"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["crosscheck-repro-2-1.pts"]


@NEEDS_TOOLS
def test_cli_engine_refusal_names_file_and_line_without_booting(capsys, tmp_path):
    from crosscheck.kernels import installed_kernels

    if not installed_kernels():
        pytest.skip("no cached kernels (run: ptlab crosscheck --setup)")
    f = tmp_path / "typo.pts"
    f.write_text("# x\nmmap buf 64K\ntouch bfu write\n")
    code, out, err = run_cli(capsys, str(f), "--json")
    assert code == 2
    d = json.loads(out)
    assert d["exit_status"] == 2 and {t["verdict"] for t in d["targets"]} == {"error"}
    assert all(b == [] for b in (k["boot_seconds"] for k in d["kernels"]))  # nothing booted
    assert err.count("\n") == 1 and err.startswith(f"ptlab: crosscheck: {f}:3: ")
    assert "no mapping named 'bfu'" in err


def test_cli_missing_cross_libc_says_what_to_install(capsys, monkeypatch):
    monkeypatch.setattr("crosscheck.setup.HOST_TOOLS",
                        (("/nonexistent/aarch64/libc.a", "libc6-dev-arm64-cross"),))
    code, _, err = run_cli(capsys, "check-01-anon-64k-fault")
    assert code == 2 and err == ("ptlab: crosscheck: /nonexistent/aarch64/libc.a not found; install: "
                                 "apt-get install libc6-dev-arm64-cross\n")


def test_features_flip_each_boolean_row_and_sort_the_evidence():
    """crosscheck/features.py: a row is confirmed by a target where only the flipped
    profile diverges, contradicted where only the flip agrees, and not visible when
    both agree."""
    from crosscheck.features import flippable_rows, gather, render
    from engine.arch.profiles import get_profile

    prof = get_profile("v6.12")
    names = [r[0] for r in flippable_rows()]
    assert "split_zeropage" in names and "layout" not in names and len(names) == len(set(names))
    evidence: dict = {}
    # the engine "agrees" unless split_zeropage is off or batched_mprotect is on
    gather(evidence, "t1", True, prof,
           lambda p: p.split_zeropage and not p.batched_mprotect)
    gather(evidence, "t2", False, prof, lambda p: not p.split_zeropage)
    assert evidence["split_zeropage"].confirm == ["t1"] and evidence["split_zeropage"].contradict == ["t2"]
    assert evidence["split_zeropage"].verdict == "mixed"
    assert evidence["batched_mprotect"].verdict == "confirmed" and not evidence["batched_mprotect"].value
    assert evidence["contpte"].verdict == "not visible" and evidence["contpte"].both_diverge == 1
    text = "\n".join(render("k", "v6.12", evidence))
    assert "split_zeropage" in text and "contradicted by 1, e.g. t2" in text
