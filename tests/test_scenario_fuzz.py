# SPDX-License-Identifier: GPL-2.0-only
"""Fuzzing the scenario language (issue #9, item 1).

Every input either runs or stops with one ``FILE:LINE: message`` (and, through
``ptlab run FILE.pts``, exit status 2 with that line on stderr); see
tests/scenario_fuzz.py for the oracle and docs/fuzzing.md for the campaigns.
Counts are printed in the test summary. Longer runs: ``python scripts/fuzz.py
scenarios --cases 100000 --seed 7``.
"""

from __future__ import annotations

import os
import random
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from run_summary import Tally
from scenario_fuzz import (
    FILE,
    ContractViolation,
    Stats,
    check_cli,
    corpus,
    hypothesis_summary,
    mutate,
    run_case,
)

from engine.errors import ScenarioError
from engine.scenario import parse

SEED = int(os.environ.get("PTLAB_FUZZ_SEED", "20250209"))
CASES = int(os.environ.get("PTLAB_FUZZ_CASES", "600"))
# the two hypothesis tests' examples and outcomes, one line in the summary at the end of the run
HYPOTHESIS_EXAMPLES = Tally(hypothesis_summary)


def _keep(tmp_path, n: int, text: str) -> str:
    p = tmp_path / f"failing-case-{n}.pts"
    p.write_text(text)
    return str(p)


def test_seeded_mutation_fuzz(tmp_path, capsys, report_line):
    """Mutations of the built-in scenarios (made small), run op by op; every
    tenth case that finishes within the budget also goes through ptlab run."""
    c = corpus()
    names = sorted(c)
    texts = [c[n] for n in names]
    rnd = random.Random(SEED)
    stats = Stats()
    cli = 0
    t0 = time.perf_counter()
    for i in range(CASES):
        text, muts = mutate(c[rnd.choice(names)], rnd, texts)
        try:
            out = run_case(text)
            if i % 10 == 0 and out.kind != "interrupted" and out.memory is None and (
                    out.kind == "error" or out.ops == len(parse(text, FILE).ops)):
                check_cli(text, tmp_path, out, capsys)
                cli += 1
        except ContractViolation as e:
            raise AssertionError(f"case {i} (seed {SEED}, {', '.join(muts)}): {e}; "
                                 f"kept as {_keep(tmp_path, i, text)}") from None
        stats.add(out, muts)
    dt = time.perf_counter() - t0
    o = stats.outcomes
    report_line(f"scenario fuzz: {stats.cases} seeded mutation cases (seed {SEED}) in {dt:.1f} s, "
                f"{stats.ops} ops run: {o['ran']} ran, {o['error']} FILE:LINE errors, "
                f"{o['interrupted']} stopped by the op budget; {cli} also through ptlab run")
    assert o["ran"] > CASES // 10 and o["error"] > CASES // 4  # the mutations reach both outcomes


# --- grammar-based generation (hypothesis) --------------------------------------------------------
def _pick(*xs: str):  # type: ignore[no-untyped-def]
    return st.sampled_from(xs)


# mostly well-formed values, with hostile ones mixed in
NAME = _pick("buf", "buf", "buf", "f", "heap", "nosuch", "{i}")
SIZE = _pick("4K", "64K", "64K", "128K", "2M", "0", "3K", "1T", "0x10000", "65G", "{i*4K+4K}", "{1/0}",
             "-4K", "99999999999999999999999")
OFF = _pick("+0", "+0", "+4K", "+60K", "+64K", "+1M", "+{i*64K}", "+1T", "+-1", "+")
PROT = _pick("rw", "r", "none", "rx", "rwx", "wx")
DIRECTIVES = _pick(
    "kernel v6.9", "kernel v6.17", "kernel baseline", "kernel nope", "granule 16K", "granule 64K",
    "granule 8K", "cpu apple-m2", "cpu neoverse-v3", "cpu x.toml", "seed 7", "seed -1", "seed x",
    "mthp 64K=always", "mthp 2M=always 64K=madvise", "mthp 3M=always", "mthp 64K", "thp always",
    "thp sometimes", "policy never", "policy scan", "policy any-entry", "policy nope", "memory 1T",
    "memory 128M aged=0.3", "memory 128M aged=2", "swap 1M", "swap 1T", "readahead 1M",
    "fault_around 16K", "check op", "check sometimes", "kernel", "mthp")


@st.composite
def op_line(draw) -> str:  # type: ignore[no-untyped-def]
    verb = draw(_pick("mmap", "mmap", "touch", "touch", "touch", "fork", "switch", "exit", "munmap",
                      "mprotect", "madvise", "reclaim", "migrate", "numa", "mremap", "split", "collapse",
                      "read", "gup", "bogus"))
    name, size, off = draw(NAME), draw(SIZE), draw(OFF)
    rng = f"{off} {size}" if draw(st.booleans()) else ""

    def opts(*xs: str) -> str:
        return draw(_pick(*xs))

    line = {
        "mmap": lambda: f"mmap {name} {size} "
                        + opts("", "r", "rw", "none", "file", "file shared", "shared", "hugepage", "at",
                               "at 0x7f0000000000"),
        "touch": lambda: f"touch {name} {rng} " + opts("read", "write", "write smmu", ""),
        "fork": lambda: "fork " + opts("", "c1", "c2", "p0", "a b"),
        "switch": lambda: "switch " + opts("p0", "c1", "p1", "nosuch", ""),
        "exit": lambda: "exit " + opts("", "c1", "p0"),
        "munmap": lambda: f"munmap {name} {rng}",
        "mprotect": lambda: f"mprotect {name} {off} {size} {draw(PROT)}",
        "madvise": lambda: f"madvise {name} {rng} "
                           + opts("dontneed", "free", "cold", "pageout", "hugepage", "nohugepage", "x"),
        "reclaim": lambda: "reclaim " + opts("", name),
        "migrate": lambda: f"migrate {name} {rng}",
        "numa": lambda: f"numa {name} {rng}",
        "mremap": lambda: f"mremap {name} " + opts("0x7e0000000000", "0x1001", "0xffffffffffff0000", "x"),
        "split": lambda: f"split {name} {off if rng else ''} " + opts("", "0", "4", "64K", "9", "3K", "pmd"),
        "collapse": lambda: f"collapse {name} {off}",
        "read": lambda: "read " + opts("f", "buf", "nosuch") + f" {rng}",
        "gup": lambda: f"gup {name} {rng} " + opts("", "read", "write", "write race"),
        "bogus": lambda: f"bogus {name}",
    }[verb]()
    return " ".join(line.split())


@st.composite
def scenario_text(draw) -> str:  # type: ignore[no-untyped-def]
    lines = draw(st.lists(DIRECTIVES, max_size=3)) if draw(st.integers(0, 3)) == 0 else []
    lines += ["memory 64M", "mthp 64K=always", "mmap buf 2M", "mmap f 1M file"]
    for _ in range(draw(st.integers(1, 10))):
        if draw(st.integers(0, 5)) == 0:
            count = draw(_pick("0", "2", "5", "100000", "16777216", "1T"))
            var = draw(_pick("", " i", " i", " j"))
            inner = draw(st.lists(op_line(), min_size=0, max_size=3))
            lines += [f"repeat {count}{var}", *inner, draw(_pick("end", "end", "end", "", "end x"))]
        else:
            lines.append(draw(op_line()))
    if draw(st.integers(0, 5)) == 0:  # a directive after the first op is an error
        lines.insert(draw(st.integers(4, len(lines))), draw(DIRECTIVES))
    return "\n".join(lines) + draw(_pick("", "\n", "\r\n", "\n\n#"))


@settings(max_examples=int(os.environ.get("PTLAB_FUZZ_EXAMPLES", "200")))
@given(scenario_text())
def test_hypothesis_scenarios_from_the_grammar(text):
    try:
        out = run_case(text, max_ops=40, poll_budget=600)
    except ContractViolation as e:
        raise AssertionError(f"{e}\n--- scenario ---\n{text}") from None
    HYPOTHESIS_EXAMPLES.add(**{"grammar": 1, "grammar ops": out.ops, f"grammar {out.kind}": 1})


@settings(max_examples=int(os.environ.get("PTLAB_FUZZ_EXAMPLES", "200")))
@given(st.text(max_size=400))
def test_hypothesis_any_text_parses_or_fails_with_a_line(text):
    try:
        out = run_case(text, max_ops=20, poll_budget=300)
    except ContractViolation as e:
        raise AssertionError(f"{e}\n--- scenario ---\n{text!r}") from None
    HYPOTHESIS_EXAMPLES.add(**{"text": 1, "text ops": out.ops, f"text {out.kind}": 1})


# --- hostile sizes, one by one ---------------------------------------------------------------------
@pytest.mark.parametrize("text,expect", [
    ("mmap x 1T\ntouch x read\n", "fuzz.pts:1: mmap of 1T is above ptlab's limit of 64G mapped"),
    ("mmap x 40G\nmmap y 40G\n", "fuzz.pts:2: 40G more would bring the address space mapped by all "
                                 "processes to 80G, above ptlab's limit of 64G"),
    ("mmap x 40G\nfork\n", "fuzz.pts:2: 40G more would bring"),
    ("mmap x 60G file\nmunmap x\nmmap y 8G file=other\n", "fuzz.pts:3: files and shmem would total 68G"),
    ("repeat 1000000000\nmmap x 4K\nend\n", "fuzz.pts:1: repeat count 1000000000 out of range"),
    ("repeat 65536\nrepeat 65536\ntouch x read\nend\nend\n", "fuzz.pts:1: the scenario would run more than "
                                                              "16,777,216 ops"),
    ("memory 1T\n", "fuzz.pts:1: memory 1T is above ptlab's limit of 64G"),
    ("swap 100G\n", "fuzz.pts:1: swap 100G is above ptlab's limit of 64G"),
    ("mmap x 0x10000000000000000\n", "fuzz.pts:1: size '0x10000000000000000' is too large"),
    ("mmap x " + "9" * 5000 + "\n", "fuzz.pts:1: size '" + "9" * 40 + "'... is too long"),
    ("repeat 2 i\nmmap x{i} {1T*1T*1T*1T}\nend\n", "fuzz.pts:2: expression value out of range"),
    ("repeat 2 i\nmmap x {" + "(" * 500 + "1" + ")" * 500 + "}\nend\n",
     "fuzz.pts:2: expression nested more than 32 deep"),
    ("repeat 2 i\nmmap x {" + "-" * 5000 + "4K}\nend\n", "fuzz.pts:2: expression nested more than 32 deep"),
    ("kernel 64K=always\n", "fuzz.pts:1: unknown kernel profile '64K=always'"),
    ("mthp 64K=aldays\n", "fuzz.pts:1: mthp: the setting for '64K' must be one of"),
    ("granule 64K\nmthp 64K=always\n", "fuzz.pts:2: mthp: no mTHP size '64K' with this granule"),
    ("memory 64M aged=nan\n", "fuzz.pts:1: aged fraction 'nan' must be at least 0 and below 1"),
    ("mmap a 4K\nrepeat 2 i\nrepeat 2 i\ntouch a read\nend\nend\n",
     "fuzz.pts:3: loop variable 'i' is already used by an enclosing repeat"),
])
def test_hostile_input_is_one_line_at_its_line(text, expect):
    out = run_case(text)
    assert out.kind == "error" and out.message.startswith(expect), out


def test_huge_loops_of_nothing_cost_nothing():
    t0 = time.perf_counter()
    s = parse("repeat 16777216\nrepeat 16777216\nend\nend\nmmap a 4K\n", FILE)
    assert len(s.ops) == 1 and [op.verb for op in s.ops] == ["mmap"] and s.ops[0].verb == "mmap"
    assert time.perf_counter() - t0 < 1


def test_indexing_a_long_flat_scenario_is_fast():
    s = parse("mmap a 64K\n" + "touch a read\n" * 50_000, FILE)
    t0 = time.perf_counter()
    assert all(s.ops[k].line == k + 1 for k in range(0, 50_001, 97))
    assert s.ops[50_000].line == 50_001
    assert time.perf_counter() - t0 < 1


def test_scenario_files_that_are_not_regular_files(tmp_path):
    from engine.scenario import load

    fifo = tmp_path / "pipe.pts"
    os.mkfifo(fifo)
    with pytest.raises(ScenarioError, match="not a regular file"):
        load(fifo)  # would block forever if opened
    with pytest.raises(ScenarioError, match="is a directory"):
        load(tmp_path)
    big = tmp_path / "big.pts"
    with big.open("wb") as f:
        f.truncate(17 << 20)
    with pytest.raises(ScenarioError, match="larger than 16 MiB"):
        load(big)
    bad = tmp_path / "bad.pts"
    bad.write_bytes(b"mmap a 4K\n\xff\xfe\n")
    with pytest.raises(ScenarioError, match="not UTF-8"):
        load(bad)


def test_line_numbers_count_newlines_only():
    # a form feed or U+2028 inside a line is not a line break for an editor
    with pytest.raises(ScenarioError) as e:
        parse("mmap a 4K\x0c\nbogus\u2028x\n", FILE)
    assert str(e.value).startswith(f"{FILE}:2: unknown verb")
