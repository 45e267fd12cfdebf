# SPDX-License-Identifier: GPL-2.0-only
"""The .pts language, the built-in scenarios and the run / scenarios commands."""

import json
import re
import textwrap

import pytest

from engine.errors import ScenarioError
from engine.expressions import parse_size
from engine.scenario import builtin, builtin_list, builtin_names, parse
from engine.scenario_machine import Machine
from tui.cli import main

# --- values and syntax ---------------------------------------------------------------


@pytest.mark.parametrize("text,value", [
    ("4K", 4096), ("64k", 65536), ("2M", 2 << 20), ("1G", 1 << 30), ("0x10000", 65536),
    ("4096", 4096), ("0x7f00_0000_0000", 0x7F0000000000),
])
def test_sizes(text, value):
    assert parse_size(text) == value


@pytest.mark.parametrize("text", ["4Q", "-4K", "x12", "0xzz", "1.5M"])
def test_bad_sizes(text):
    with pytest.raises(ScenarioError, match="bad"):
        parse_size(text)


def test_header_directives_and_ops():
    s = parse(textwrap.dedent("""\
        # a one-line description
        kernel v6.9
        granule 16K
        cpu apple-m2
        seed 7
        mthp 64K=always 2M=never
        thp always
        policy never
        memory 2G aged=0.1
        swap 1G
        readahead 1M
        fault_around 16K
        mmap buf 2M rw anon private at 0x7f0000000000
        mmap f 1M r file=data shared
        touch buf +64K 4K write
        touch f read
        madvise buf +0 2M hugepage
        split buf +0 64K
        split buf pmd
        split buf +2M 4
        gup buf +0 4K write race
        """), "x.pts")
    assert s.description == "a one-line description"
    h = s.header
    assert (h["kernel"], h["granule"], h["cpu"], h["seed"], h["thp"], h["policy"]) == \
        ("v6.9", "16K", "apple-m2", 7, "always", "never")
    assert h["mthp"] == {"64K": "always", "2M": "never"}
    assert (h["memory"], h["aged"], h["swap"], h["readahead"], h["fault_around"]) == \
        (2 << 30, 0.1, 1 << 30, 1 << 20, 16 << 10)
    ops = list(s.ops)
    assert [o.verb for o in ops] == ["mmap", "mmap", "touch", "touch", "madvise", "split", "split", "split",
                                     "gup"]
    assert ops[0].args["at"] == 0x7F0000000000 and ops[0].line == 13
    assert ops[1].args == {"name": "f", "size": 1 << 20, "prot": "r", "kind": "file", "shared": True,
                           "at": None, "file": "data", "hugepage": False}
    assert ops[2].args == {"name": "buf", "off": 65536, "len": 4096, "access": "write", "via": "cpu"}
    assert ops[3].args == {"name": "f", "access": "read", "via": "cpu"}
    assert ops[5].args["order_size"] == 65536
    assert ops[6].args == {"name": "buf", "order": 0, "pmd": True}
    assert ops[7].args == {"name": "buf", "off": 2 << 20, "order": 4, "pmd": False}
    assert ops[8].args["write"] and ops[8].args["race"]
    cfg = s.config(kernel="v7.0")
    assert cfg.kernel == "v7.0" and cfg.granule == "16K"


def test_repeat_blocks_expand_lazily_with_variables():
    s = parse(textwrap.dedent("""\
        mmap buf 1M
        repeat 3 i
          repeat 2 j
            touch buf +{i*64K + j*4K} 4K write
          end
          mprotect buf +{i * 64K} 4K r
        end
        """))
    ops = list(s.ops)
    assert len(s.ops) == len(ops) == 1 + 3 * 3
    offs = [o.args.get("off") for o in ops if o.verb == "touch"]
    assert offs == [0, 4096, 65536, 65536 + 4096, 131072, 131072 + 4096]
    assert [str(o) for o in ops[1:4]] == ["touch buf +0 4K write", "touch buf +4096 4K write",
                                          "mprotect buf +0 4K r"]
    # indexing computes the same ops without walking the rest
    assert [s.ops[i].args for i in range(len(s.ops))] == [o.args for o in ops]
    assert s.ops[-1].args["off"] == 131072


def test_a_million_op_session_is_a_few_lines():
    s = parse("mmap b 64K\nrepeat 500000\n  mprotect b +0 4K r\n  mprotect b +0 4K rw\nend\n")
    assert len(s.ops) == 1_000_001
    assert s.ops[999_999].args["prot"] == "r" and s.ops[1_000_000].args["prot"] == "rw"


@pytest.mark.parametrize("text,line,message", [
    ("mmap a 64K\nfrobnicate a\n", 2, "unknown verb or directive 'frobnicate'"),
    ("mmap a 64Q\n", 1, "bad size '64Q'"),
    ("mmap a 64K\ntouch a +0 4K\n", 2, "touch needs read or write"),
    ("mmap a 64K\nmprotect a +0 rw\n", 2, "mprotect needs NAME \\+OFF LEN"),
    ("mmap a 64K\nkernel v6.9\n", 2, "must come before the first op"),
    ("repeat 2\nmmap a 4K\n", 1, "'repeat' without 'end'"),
    ("end\n", 1, "'end' without 'repeat'"),
    ("mmap a 64K\nrepeat 2 i\ntouch a +{k*4K} 4K read\nend\n", 3, "unknown variable 'k'"),
    ("mthp 64K\n", 1, "expected SIZE=SETTING"),
    ("memory 1G aged=lots\n", 1, "bad aged fraction"),
])
def test_syntax_errors_name_the_file_and_line(text, line, message):
    with pytest.raises(ScenarioError, match=message) as ei:
        parse(text, "bad.pts")
    assert str(ei.value).startswith(f"bad.pts:{line}: ")


# --- built-ins -----------------------------------------------------------------------

def test_builtins_are_listed_with_descriptions():
    names = builtin_names()
    for n in ("demo", "seed-fork-order0", "seed-fork-order9", "seed-munmap-order0",
              "seed-munmap-order9", "page-fault3", "kbuild", "cow-mthp"):
        assert n in names
    checks = [n for n in names if n.startswith("check-")]
    assert [int(n[6:8]) for n in checks] == list(range(1, 16))
    for name, desc in builtin_list():
        assert desc and len(desc) < 200, name


def test_demo_is_about_sixty_ops_and_tells_the_story():
    s = builtin("demo")
    assert 25 <= len(s.ops) <= 70
    m = Machine(s.config())
    for op in s.ops:
        m.apply(op)
    t = m.counters()
    assert t["folds"] >= 3 and t["unfolds"] >= 5 and t["invariant_violations"] == 0


@pytest.mark.parametrize("name", ["seed-fork-order0", "seed-fork-order9", "seed-munmap-order0",
                                  "seed-munmap-order9"])
def test_seed_scenarios_at_a_small_size(name):
    """The seed benchmarks shrunk from 1 GiB to 16 MiB (same shape)."""
    text = builtin(name).source.replace("mmap buf 1G", "mmap buf 16M")
    results = {}
    for kernel in ("seed-basic", "seed-batch", "v7.0"):
        m = Machine(parse(text).config(kernel=kernel))
        for op in parse(text).ops:
            last = m.apply(op)
        results[kernel] = last
    if name.endswith("order9"):
        # 8 PTE-mapped THPs: per-pte unfolds on seed-basic, none with the batch APIs
        assert results["seed-basic"]["converts"] == 8 * 32
        assert results["seed-batch"]["converts"] == results["v7.0"]["converts"] == 0
    else:
        assert all(r["converts"] == 0 for r in results.values())
        assert results["v7.0"]["pte_writes"] >= 4096


def test_page_fault3_regression_shape():
    text = builtin("page-fault3").source.replace("16M", "2M")
    v69 = Machine(parse(text).config(kernel="v6.9"))
    v70 = Machine(parse(text).config(kernel="v7.0"))
    for op in parse(text).ops:
        v69.apply(op)
        v70.apply(op)
    a, b = v69.counters(), v70.counters()
    # every block backed by a large enough folio folds once per pass under v6.9
    assert a["folds"] == a["converts"] > 0 and a["page_faults"] == 2 * 512
    assert b["converts"] == 0 and b["page_faults"] < a["page_faults"] // 4


# --- the CLI -------------------------------------------------------------------------

def test_ptlab_run_json(capsys):
    assert main(["run", "check-06-munmap-1.5-blocks", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["scenario"] == "check-06-munmap-1.5-blocks"
    assert out["totals"]["converts"] == 1 and out["totals"]["ops"] == 3
    p0 = out["processes"]["p0"]
    assert p0["alive"] and p0["vmas"][0]["name"] == "buf"
    assert p0["vmas"][0]["ptes_present"] == 8  # 128K - 96K
    assert out["config"]["kernel"] == "v7.3"


def test_ptlab_run_overrides_and_human_output(capsys):
    assert main(["run", "check-07-mprotect-whole-folio", "--kernel", "v6.9", "--cpu", "neoverse-v3"]) == 0
    out = capsys.readouterr().out
    assert "kernel v6.9" in out and "cpu neoverse-v3" in out
    assert re.search(r"converts\s+4\b", out)
    assert "process p0" in out


def test_ptlab_run_policy_file(tmp_path, capsys):
    pol = tmp_path / "pol.py"
    pol.write_text("from engine.policy import FoldPolicy\n"
                   "class Eager(FoldPolicy):\n"
                   "    name = 'eager'\n"
                   "    def should_try_fold(self, arch, mm, addr, pte):\n"
                   "        return bool(pte & 1)\n")
    assert main(["run", "check-08-mprotect-one-page", "--policy", f"{pol}:Eager", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["totals"]["cont_blocks"] == 2  # the middle page refolds too
    assert out["config"]["policy"] == "eager"


def test_ptlab_scenarios(capsys):
    assert main(["scenarios"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^demo\s+the contpte story", out, re.M)
    assert main(["scenarios", "--json"]) == 0
    names = [s["name"] for s in json.loads(capsys.readouterr().out)["scenarios"]]
    assert "check-15-smmu-no-httu" in names


@pytest.mark.parametrize("text,message", [
    ("mmap a 64K\nfrob a\n", r"^ptlab: .*bad\.pts:2: unknown verb or directive 'frob'"),
    ("mmap a 64Q\n", r"^ptlab: .*bad\.pts:1: bad size '64Q'"),
    ("mmap a 64K\ntouch b read\n", r"^ptlab: .*bad\.pts:2: no mapping named 'b' in process p0"),
    ("mmap a 64K\nmunmap a +0 16K\ntouch a read\n",
     r"^ptlab: .*bad\.pts:3: address 0x[0-9a-f]+ \(a \+0x0\) is outside any VMA"),
])
def test_bad_scenario_input_exits_2_with_one_line(tmp_path, capsys, text, message):
    f = tmp_path / "bad.pts"
    f.write_text(text)
    assert main(["run", str(f)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert re.search(message, err)


@pytest.mark.parametrize("argv,message", [
    (["run", "no-such-scenario"], "no built-in scenario 'no-such-scenario'"),
    (["run", "/nonexistent/x.pts"], "no such scenario file"),
    (["run", "demo", "--kernel", "v9.9"], "unknown kernel profile"),
    (["run", "demo", "--granule", "8K"], "unknown granule"),
    (["run", "demo", "--policy", "nope"], "unknown policy"),
    (["run", "demo", "--cpu", "z80"], "unknown CPU profile"),
])
def test_bad_arguments_exit_2(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
