# SPDX-License-Identifier: GPL-2.0-only
"""Every input is hostile (issue 13): crafted snapshots with valid CRCs,
scenario text, command lines and special files. Each case must end within
seconds in one line on stderr with exit status 1 or 2 (or succeed with every
string from the file escaped), never a traceback, a raw terminal escape, a
hang or a memory blow-up. The crafted files come from tests/hostile_samples.py.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import hostile_samples as hs  # noqa: E402

from tui.cli import main  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ESC = "\x1b"


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return hs.base_file(tmp_path_factory.mktemp("hostile") / "base.ptsnap")


@pytest.fixture(scope="module")
def parts(base: Path) -> hs.Parts:
    return hs.read_parts(base)


def crafted(name: str, tmp_path: Path, base: Path) -> Path:
    return hs.craft(name, tmp_path / f"{name}.ptsnap", base)


def cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err and ESC not in err
    return lines[0]


def run_subprocess(argv: list[str], timeout: float = 30, **kw) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    if "stdout" not in kw:
        kw["capture_output"] = True
    return subprocess.run([sys.executable, "-m", "tui.cli", *argv], text=True, timeout=timeout, cwd=ROOT,
                          env=env, **kw)


# --- crafted snapshots --------------------------------------------------------------------------

REFUSED = [n for n, (_, kind) in hs.CASES.items() if kind in ("refused", "refused-lazy")
           and n != "amplified-blob"]
COMMANDS = [["replay", "{f}"], ["replay", "{f}", "--verify"], ["replay", "{f}", "--json"],
            ["show", "{f}", "--at", "25"], ["diff", "{f}", "{base}"], ["run", "--from", "{f}"],
            ["run", "--from", "{f}", "--json"]]


@pytest.mark.parametrize("name", REFUSED)
def test_a_crafted_snapshot_is_refused_in_one_line_by_every_command(name, tmp_path, base, capsys):
    f = crafted(name, tmp_path, base)
    for argv in COMMANDS:
        argv = [a.format(f=f, base=base) for a in argv]
        code, out, err = cli(argv, capsys)
        line = one_line(err)
        assert code == 2, (argv, line)
        assert line.startswith(f"ptlab: {f}:"), line  # names the file
        if "--json" in argv:
            assert json.loads(out)["exit_status"] == 2
        else:
            assert out == ""


def test_a_cpu_path_in_a_snapshot_is_never_opened(tmp_path, base, capsys, monkeypatch):
    f = crafted("cpu-path-proc-kmsg", tmp_path, base)
    opened: list[str] = []
    real_open = os.open

    def spy(path, *a, **k):  # type: ignore[no-untyped-def]
        opened.append(os.fsdecode(path))
        return real_open(path, *a, **k)

    monkeypatch.setattr(os, "open", spy)
    code, _, err = cli(["replay", f], capsys)
    assert code == 2 and "never opens a path named in a snapshot" in one_line(err)
    assert "/proc/kmsg" not in opened and str(f) in opened


def test_the_user_may_supply_the_cpu_profile_a_snapshot_names(tmp_path, base, capsys):
    f = crafted("cpu-path-toml", tmp_path, base)
    code, out, err = cli(["replay", f, "--cpu", "apple-m2"], capsys)
    assert code == 0, err
    assert "cpu neoverse-n1" not in out or "apple-m2" in out


def test_header_and_config_must_agree(tmp_path, base, capsys):
    f = crafted("header-config-disagree", tmp_path, base)
    code, _, err = cli(["show", f], capsys)
    line = one_line(err)
    assert code == 2 and "its header says kernel v6.9 but its configuration says 'v7.0'" in line


def test_a_user_cpu_profile_is_embedded_by_value(tmp_path, capsys):
    prof = tmp_path / "mine.toml"
    prof.write_text('name = "mine"\nbase = "apple-m2"\n[weights]\ndsb_ish = 123\n')
    f = tmp_path / "run.ptsnap"
    code, _, err = cli(["run", "check-05-cow-one-page", "--cpu", prof, "--save", f], capsys)
    assert code == 0, err
    prof.unlink()  # the snapshot must not need it any more
    from snapshots import open_snapshot

    with open_snapshot(str(f)) as snap:
        assert snap.header.cpu == "mine"
        embedded = snap.header.extra["config"]["cpu"]
    assert embedded["name"] == "mine" and embedded["weights"]["dsb_ish"] == 123.0
    code, out, err = cli(["replay", f, "--verify"], capsys)
    assert code == 0 and "every digest and cost matches" in out, err
    code, out, err = cli(["replay", f], capsys)
    assert code == 0 and "cpu mine" in out


def test_a_forged_checkpoint_fails_verify_with_op_address_and_both_values(tmp_path, base, capsys):
    h, ops, cps = hs.read_parts(base)
    proc, key, old, new = hs.forge_pte(cps[20])
    f = hs.write_parts(tmp_path / "forged.ptsnap", (h, ops, cps))
    code, out, err = cli(["replay", f, "--verify"], capsys)
    line = one_line(err)
    assert code == 1 and out == ""
    assert "the checkpoint after op 20" in line and f"in {proc}" in line
    assert f"the file has {new:#018x}, re-execution gives {old:#018x}" in line
    code, out, _ = cli(["replay", f, "--verify", "--json"], capsys)
    d = json.loads(out)
    assert code == 1 and d["ok"] is False and d["first_divergence"]["what"] == "checkpoint"
    div = d["first_divergence"]
    assert div["expected"] == f"{new:#018x}" and div["found"] == f"{old:#018x}"


def test_show_and_diff_never_display_a_forged_checkpoint_as_truth(tmp_path, base, capsys):
    f = crafted("forged-checkpoint", tmp_path, base)
    code, truth, err = cli(["show", base, "--at", "25"], capsys)
    assert code == 0 and err == ""
    code, shown, err = cli(["show", f, "--at", "25"], capsys)
    assert code == 0
    assert shown == truth  # re-executed, not the forged table
    assert "the checkpoint after op 20 does not match the op log" in one_line(err)
    assert "ops 11-20 are re-executed instead" in err
    code, out, err = cli(["diff", f, base, "--at", "25"], capsys)
    assert code == 0 and "identical states and costs" in out and "re-executed" in err


def test_a_damaged_checkpoint_record_is_reexecuted_on_open_and_fails_verify(tmp_path, base, capsys):
    from snapshots import open_snapshot

    data = bytearray(base.read_bytes())
    with open_snapshot(str(base)) as snap:
        i = snap.checkpoint_numbers.index(20)
        off = snap._layout.checkpoint_offsets[i]
    data[off + 40] ^= 0x10  # one bit inside the checkpoint record: its CRC fails
    f = tmp_path / "bitflip.ptsnap"
    f.write_bytes(bytes(data))
    code, out, err = cli(["show", f, "--at", "25"], capsys)
    assert code == 0 and "the checkpoint after op 20 cannot be used" in one_line(err)
    assert out == cli(["show", base, "--at", "25"], capsys)[1]
    code, out, err = cli(["replay", f, "--verify"], capsys)
    line = one_line(err)
    assert code == 1 and "fails its CRC" in line and line.startswith(f"ptlab: replay: {f}")


def test_one_flipped_bit_in_an_op_batch_is_one_line(tmp_path, base, capsys):
    from snapshots import open_snapshot

    data = bytearray(base.read_bytes())
    with open_snapshot(str(base)) as snap:
        off = snap._layout.batch_offsets[0]
    data[off + 60] ^= 0x01
    f = tmp_path / "opflip.ptsnap"
    f.write_bytes(bytes(data))
    for argv in (["replay", f], ["show", f], ["diff", f, base]):
        code, _, err = cli(argv, capsys)
        assert code == 2 and str(f) in one_line(err), (argv, err)
    code, _, err = cli(["replay", f, "--verify"], capsys)
    assert code in (1, 2) and str(f) in one_line(err)


def test_an_amplifying_checkpoint_is_bounded(tmp_path, base, capsys):
    f = crafted("amplified-blob", tmp_path, base)
    assert f.stat().st_size < 4 << 20  # a small file ...
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    code, _, err = cli(["replay", f, "--verify"], capsys)
    line = one_line(err)
    assert code == 1 and "counted at every reference, exceed the limit" in line
    code, out, err = cli(["show", f, "--at", "15"], capsys)  # ... is re-executed instead of expanded
    assert code == 0 and "the checkpoint after op 10 cannot be used" in err
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 300, grown_mb


@pytest.mark.parametrize("name", ["scenario-name-escapes", "op-text-escapes"])
def test_terminal_escapes_from_a_snapshot_never_reach_the_terminal(name, tmp_path, base, capsys):
    f = crafted(name, tmp_path, base)
    for argv in (["replay", f], ["replay", f, "--to", "5"], ["replay", f, "--verify"],
                 ["show", f, "--at", "5"], ["diff", f, base], ["replay", f, "--json"]):
        code, out, err = cli(argv, capsys)
        assert code == 0, (argv, err)
        assert ESC not in out and ESC not in err and "\x07" not in out, argv
    code, out, _ = cli(["replay", f], capsys)
    if name == "scenario-name-escapes":
        assert "\\x1b[2J\\x1b[31mred\\x1b]0;pwned title\\x07\\nsecond line" in out.splitlines()[0]
    from snapshots.sessions import open_session

    loaded = open_session(str(f))
    try:
        assert ESC not in loaded.session.name and "\n" not in loaded.session.name
        assert all(ESC not in str(op) for op in loaded.session.ops[:10])
    finally:
        loaded.snapshot.close()


def test_counters_compare_by_value_and_a_divergence_names_what_differs(tmp_path, base, capsys):
    h, ops, cps = hs.read_parts(base)
    ops[7][1]["tlb_evict_extra"] = 0  # absent in a fresh run, 0 in the file: the same value
    f = hs.write_parts(tmp_path / "zero.ptsnap", (h, ops, cps))
    code, out, err = cli(["replay", f, "--verify"], capsys)
    assert code == 0 and "every digest and cost matches" in out, err
    code, out, err = cli(["diff", f, base], capsys)
    assert code == 0 and "identical states and costs" in out, err
    ops[7][1]["pte_writes"] += 3
    g = hs.write_parts(tmp_path / "more.ptsnap", (h, ops, cps))
    code, out, err = cli(["replay", g, "--verify"], capsys)
    line = one_line(err)
    want = ops[7][1]["pte_writes"]
    assert code == 1 and "op 8 (" in line and f"pte_writes expected {want} found {want - 3}" in line
    code, out, err = cli(["diff", g, base], capsys)
    assert code == 1 and "first divergence: op 8" in out and f"pte_writes: {want} vs {want - 3}" in out


def test_replay_json_is_always_valid_json(tmp_path, base, capsys):
    def strict(text: str) -> dict:
        return json.loads(text, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))

    for argv in (["replay", base, "--json"], ["replay", base, "--verify", "--json"],
                 ["replay", crafted("counter-inf", tmp_path, base), "--json"],
                 ["replay", crafted("counter-nan", tmp_path, base), "--verify", "--json"]):
        code, out, err = cli(argv, capsys)
        d = strict(out)
        assert code in (0, 2) and (("error" in d) == (code != 0)), (argv, out)


# --- command lines and scenarios ------------------------------------------------------------------

def test_replay_to_takes_op_dot_event_and_refuses_past_the_end(base, capsys):
    code, out, err = cli(["replay", base, "--to", "4.30"], capsys)
    assert code == 0 and out.splitlines()[1] == "at step 4.30 / 50", (out, err)
    code, out, err = cli(["replay", base, "--to", "99"], capsys)
    assert code == 2 and "--to 99: the file has 50 ops" in one_line(err)
    code, _, err = cli(["replay", base, "--to", "²"], capsys)
    assert code == 2 and "is not a step" in one_line(err)


@pytest.mark.parametrize("argv,code,text", [
    (["diff", "{base}", "{base}", "--limit", "99999999999999999999"], 2, "--limit must be between 1"),
    (["diff", "{base}", "{base}", "--limit", "9" * 5000], 2, "invalid count"),
    (["diff", "{base}", "{base}", "--limit", "2000000"], 2, "--limit must be between 1"),
    (["show", "a" * 300], 2, "not a known target"),
    (["run", "a" * 300 + ".pts"], 2, "file name too long"),
    (["run", "demo", "--cpu", "a" * 300 + ".toml"], 2, "file name too long"),
    (["show", "x" * 300 + ".ptsnap"], 2, "file name too long"),
])
def test_hostile_arguments(argv, code, text, base, capsys):
    got, _, err = cli([a.format(base=base) for a in argv], capsys)
    assert got == code and text in one_line(err)


@pytest.mark.parametrize("body,text", [
    ("mmap buf 64K\nsplit buf ²\n", ":2: unknown split option '²'"),
    ("mmap buf {" + "+".join(["1"] * 1000) + "}K\n", ":1: expression has more than 128 operators"),
    ("mmap buf {" + "(" * 200 + "1" + ")" * 200 + "}K\n", ":1: expression nested more than 32 deep"),
    ("cpu /proc/kmsg\nmmap buf 64K\n", "not a regular file (a kernel pseudo-file"),
    ("cpu /dev/zero\nmmap buf 64K\n", "not a regular file (it is a device)"),
])
def test_hostile_scenarios(body, text, tmp_path, capsys):
    f = tmp_path / "s.pts"
    f.write_text(body)
    code, _, err = cli(["run", f], capsys)
    assert code == 2 and text in one_line(err)


def test_a_toml_nested_500_deep_is_one_line(tmp_path, capsys):
    deep = tmp_path / "deep.toml"
    deep.write_text("a = " + "[" * 500 + "]" * 500 + "\n")
    code, _, err = cli(["run", "demo", "--cpu", deep], capsys)
    assert code == 2 and "nested more than 32 levels" in one_line(err)
    from tui.keymap import load_keymap

    keys, warnings = load_keymap(deep)
    assert keys == {} and len(warnings) == 1 and "nested more than 32 levels" in warnings[0]


@pytest.mark.parametrize("json_flag", [[], ["--json"]])
def test_output_to_dev_full_is_one_line(json_flag):
    with open("/dev/full", "w") as full:
        r = run_subprocess(["run", "check-05-cow-one-page", *json_flag], stdout=full,
                           stderr=subprocess.PIPE)
    assert r.returncode == 2
    assert r.stderr.strip() == "ptlab: cannot write the output: No space left on device"


# --- special files ------------------------------------------------------------------------------------

@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    p = tmp_path / "fifo"
    os.mkfifo(p)
    return p


def test_special_files_as_inputs_never_hang(tmp_path, fifo):
    cases = [
        (["run", "demo", "--cpu", "/proc/kmsg"], "/proc/kmsg: not a regular file (a kernel pseudo-file"),
        (["run", "demo", "--cpu", str(fifo)], f"{fifo}: not a regular file (it is a FIFO)"),
        (["run", str(fifo)], f"{fifo}: not a regular file (it is a FIFO): not a scenario file"),
        (["run", "/dev/zero"], "/dev/zero: not a regular file (it is a device): not a scenario file"),
        (["run", str(tmp_path)], f"{tmp_path}: is a directory, not a scenario file"),
        (["run", "demo", "--policy", f"{fifo}.py:P"], "does not exist"),
        (["tui", f"{fifo}.json"], "no such file"),
    ]
    for argv, text in cases:
        r = run_subprocess(argv, timeout=20)
        assert r.returncode == 2, (argv, r.stderr)
        line = one_line(r.stderr)
        assert text in line and "PosixPath" not in line, (argv, line)


def test_a_policy_fifo_is_not_said_to_be_missing(fifo, capsys):
    code, _, err = cli(["run", "demo", "--policy", f"{fifo}.py:P"], capsys)
    assert code == 2 and "does not exist" in one_line(err)  # it does not: fifo.py is another name
    link = fifo.parent / "pol.py"
    os.symlink(fifo, link)
    code, _, err = cli(["run", "demo", "--policy", f"{link}:P"], capsys)
    line = one_line(err)
    assert code == 2 and "not a regular file (it is a FIFO)" in line and "does not exist" not in line


def test_a_keymap_fifo_is_a_warning_not_a_hang(fifo):
    from tui.keymap import load_keymap

    keys, warnings = load_keymap(fifo)  # returns at once: the open does not wait for a writer
    assert keys == {} and warnings == [f"keymap {fifo}: not a regular file (it is a FIFO): not a keymap; "
                                       "default keys used"]


def test_a_fifo_at_the_partial_name_never_hangs_a_save(tmp_path):
    target = tmp_path / "x.ptsnap"
    os.mkfifo(str(target) + ".partial")
    r = run_subprocess(["run", "check-05-cow-one-page", "--save", str(target)], timeout=30)
    assert r.returncode == 2
    assert one_line(r.stderr) == (f"ptlab: {target}: cannot save: {target}.partial exists and is not a "
                                  "regular file (a FIFO or a device); remove it first")
    assert not target.exists()


# --- the TUI validates like the CLI ------------------------------------------------------------------

@pytest.mark.parametrize("name", ["digest-hex-string", "counter-nan", "op-args-list", "cpu-path-proc-kmsg",
                                  "header-config-disagree"])
def test_the_tui_refuses_a_hostile_snapshot_in_one_line(name, tmp_path, base, capsys, monkeypatch):
    from tui.app import PtlabApp

    monkeypatch.setattr(PtlabApp, "run", lambda self, *a, **k: pytest.fail("the TUI started"))
    f = crafted(name, tmp_path, base)
    code, out, err = cli(["tui", f], capsys)
    assert code == 2 and one_line(err).startswith(f"ptlab: {f}:"), err


def test_the_tui_opens_a_forged_checkpoint_file_on_re_executed_state(tmp_path, base):
    from tui.snapshot_files import load_session

    s = load_session(crafted("forged-checkpoint", tmp_path, base))
    truth = load_session(base)
    s.seek(25)
    truth.seek(25)
    from engine.queries import first_differing_entry

    assert first_differing_entry(s, truth) == (None, None, None, None)
    assert any("the checkpoint after op 20 does not match the op log" in w for w in s.warnings)


# --- the random campaign (longer: python scripts/fuzz.py hostile --cases N) ---------------------------

def test_random_hostile_snapshots(base, tmp_path, report_line):
    cases = int(os.environ.get("PTLAB_FUZZ_HOSTILE_CASES", "24"))
    r = hs.campaign(base, tmp_path, cases, seed=20250131, keep=tmp_path / "keep")
    counts = r["counts"]
    report_line(f"hostile fuzz: {cases} random hostile snapshots (seed 20250131) through replay/verify/show/"
                f"diff/run --from in {r['seconds']:.0f} s (slowest {r['slowest']:.1f} s): "
                + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())))
    assert r["failures"] == [], r["failures"]
    assert counts.get("exit 2", 0) + counts.get("exit 1", 0) > cases // 4  # most lies are caught


def test_two_index_batches_at_one_offset_fall_back_to_a_scan(tmp_path):
    import snapshot_samples as ss

    from snapshots import open_snapshot
    from snapshots.writer import save_snapshot

    good = tmp_path / "good.ptsnap"
    save_snapshot(str(good), ss.header(), ss.op_records(3000), {0: ss.state(0)})

    def same_offset(index: dict) -> None:
        index["batches"][3] = index["batches"][1]  # batch 1 "at" batch 0's offset

    bad = hs.patch_index(good, tmp_path / "bad.ptsnap", same_offset)
    with open_snapshot(str(bad)) as snap, open_snapshot(str(good)) as ref:
        assert snap.warnings == [f"{bad}: its index is unusable (the index's op batch offsets are out of "
                                 "order); read the whole file instead"]
        assert [r.digest for r in snap.ops] == [r.digest for r in ref.ops]


def test_the_tui_renders_names_from_a_file_escaped(tmp_path, base):
    import asyncio

    from tui.app import PtlabApp
    from tui.pilot import settle
    from tui.snapshot_files import load_session

    s = load_session(crafted("scenario-name-escapes", tmp_path, base))

    async def body() -> None:
        app = PtlabApp(s, use_keymap=False)
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(app, pilot)
            header = app.main.header_text()
            assert ESC not in header and "\n" not in header and "\\x1b[2J" in header
            app.main.say(hs.ESCAPES + " [/unbalanced")  # markup from a file is text, not markup
            await settle(app, pilot)
            assert ESC not in app.main.messages[-1] and app.main.messages[-1].endswith("[/unbalanced")
            assert app.main.ctl.errors == []

    asyncio.run(body())


def test_show_says_when_a_file_is_truncated_or_its_policy_replaced(tmp_path, base, capsys):
    h, ops, cps = hs.read_parts(base)
    h = hs._set_extra_cfg(hs._with_header(h, policy="mine.py:Mine"), policy="mine.py:Mine")
    f = hs.write_parts(tmp_path / "policy.ptsnap", (h, ops, cps))
    code, out, err = cli(["show", f, "--at", "5"], capsys)
    assert code == 0 and out
    assert err.startswith("ptlab: warning: the snapshot's fold policy 'mine.py:Mine' is not built in")
    cut = tmp_path / "cut.ptsnap"
    data = base.read_bytes()
    cut.write_bytes(data[: len(data) - 40])  # the final commit and part of the index are gone
    code, out, err = cli(["show", cut], capsys)  # recovered up to its last commit (op 0 here)
    assert code == 0 and out
    assert f"ptlab: warning: {cut}: recovered 0 ops; file truncated after op 0" in err, err


def test_an_op_that_cannot_run_is_one_line_in_every_command(tmp_path, base, capsys):
    h, ops, cps = hs.read_parts(base)
    ops[26][0]["verb"] = "0" * 31  # found by the campaign (seed 7, case 223): diff ended in exit 70
    f = hs.write_parts(tmp_path / "verb.ptsnap", (h, ops, cps))
    for argv in (["diff", f, base], ["replay", f, "--verify"], ["show", f, "--at", "27"]):
        code, _, err = cli(argv, capsys)
        assert code == 2 and "unknown verb '0000000000000000000000000000000'" in one_line(err), (argv, err)


# --- the TUI as a user starts it: `ptlab tui FILE` in a subprocess (issue 13, item 6) ------------------

TUI_CASES = ["digest-hex-string", "counter-nan", "counter-inf", "op-args-list"]


@pytest.mark.parametrize("name", TUI_CASES)
def test_ptlab_tui_refuses_a_hostile_snapshot_in_one_line_as_a_subprocess(name, tmp_path, base):
    # no terminal is needed: the file is checked before the TUI asks for one
    f = crafted(name, tmp_path, base)
    r = run_subprocess(["tui", str(f)], stdin=subprocess.DEVNULL, capture_output=True)
    assert r.returncode == 2, r.stderr
    line = one_line(r.stderr)
    assert line.startswith(f"ptlab: {f}: op 4") and "needs a terminal" not in line, line
    assert r.stdout == ""


def _big_file_with_one_bad_record(tmp_path: Path, parts: hs.Parts, bad_op: int,
                                  change: Any) -> Path:
    """More ops than open_session checks eagerly, one record bad far in: only a
    check of every record finds it before the TUI starts."""
    import snapshots.sessions as sio

    h, ops, _cps = parts
    n = sio.EAGER_CHECK_OPS + 1000
    many = [list(ops[k % len(ops)]) for k in range(n)]
    many[bad_op] = [dict(many[bad_op][0]), dict(many[bad_op][1]), many[bad_op][2]]
    change(many[bad_op])
    return hs.write_parts(tmp_path / "big.ptsnap", (h, many, {}))


@pytest.mark.parametrize("what", ["counter-nan", "op-args-list", "digest-hex-string"])
def test_ptlab_tui_checks_every_record_of_a_big_file(what, tmp_path, parts):
    import math

    change = {"counter-nan": hs._counter("pte_writes", math.nan), "op-args-list": hs._set("args", [1, 2]),
              "digest-hex-string": hs._digest("00" * 16)}[what]
    bad = 66_000
    f = _big_file_with_one_bad_record(tmp_path, parts, bad, change)
    r = run_subprocess(["tui", str(f)], stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
    assert r.returncode == 2, r.stderr
    assert one_line(r.stderr).startswith(f"ptlab: {f}: op {bad + 1}"), r.stderr


def test_a_crash_inside_the_tui_is_one_line_and_not_exit_0(tmp_path, base, monkeypatch):
    """The safety net behind the checks: an error that escapes the app ends it
    without Textual's traceback (which prints local variables: file contents)
    and `ptlab tui` reports it in one line, exit 2 for a hostile record."""
    import asyncio

    from snapshots.errors import SnapshotCorruptError
    from tui.app import PtlabApp
    from tui.commands.tui_cmd import exit_status, quiet_crashes
    from tui.errors import UserError
    from tui.pilot import settle
    from tui.snapshot_files import load_session

    monkeypatch.delenv("PTLAB_DEBUG", raising=False)
    s = load_session(base)
    app = PtlabApp(s, use_keymap=False)
    quiet_crashes(app)

    async def body() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(app, pilot)
            bad = SnapshotCorruptError(f"{base.name}: op 4: its state digest is not 16 bytes")
            app.call_later(_raise, bad)
            await pilot.pause(0.2)

    with pytest.raises(SnapshotCorruptError):  # run_test re-raises it for test frameworks
        asyncio.run(body())
    assert app._exit_renderables == []  # no traceback with locals was queued for the terminal
    with pytest.raises(UserError, match="op 4: its state digest"):
        exit_status(app)


def _raise(e: BaseException) -> None:
    raise e


def test_the_tui_opens_a_file_whose_index_has_two_batches_at_one_offset(tmp_path):
    """Two index batches at one offset: the reader falls back to a scan and says
    so; the TUI opens it on the scanned records, with the warning, no error."""
    import asyncio

    from snapshots.writer import save_snapshot
    from tui.app import PtlabApp
    from tui.pilot import settle
    from tui.snapshot_files import load_session

    h, ops, cps = hs.read_parts(hs.base_file(tmp_path / "demo.ptsnap"))
    good = tmp_path / "good.ptsnap"
    # uncompressed (patch_index rewrites the index in place), one op batch per 8 ops
    save_snapshot(str(good), h, [tuple(o) for o in ops], cps, compress_level=0, commit_every=8)

    def same_offset(index: dict) -> None:
        b = index["batches"]
        b[len(b) // 2] = b[0]

    bad = hs.patch_index(good, tmp_path / "bad.ptsnap", same_offset)
    s = load_session(bad)
    assert any("its index is unusable" in w for w in s.warnings), s.warnings

    async def body() -> None:
        app = PtlabApp(s, use_keymap=False)
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(app, pilot)
            for _ in range(5):
                await pilot.press("n")
            await settle(app, pilot)
            assert app.main.ctl.errors == [] and s.position.op == 5

    asyncio.run(body())
    r = run_subprocess(["tui", str(bad)], stdin=subprocess.DEVNULL, capture_output=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr  # no terminal: one line saying so
    assert r.stderr.strip().splitlines()[-1].startswith("ptlab: tui: needs a terminal")


# --- ptlab run --from FILE: the starting state is a snapshot like any other ---------------------------

def test_run_from_a_scenario_snapshot_saves_and_verifies(tmp_path, base, capsys):
    pts = tmp_path / "x.pts"
    pts.write_text("fork kid\nmprotect big +0 64K r\nreclaim\n")
    out = tmp_path / "x.ptsnap"
    code, text, err = cli(["run", pts, "--from", base, "--save", out], capsys)
    assert code == 0, err
    assert f"from {base}: the end of demo (50 ops)" in text and "process kid" in text
    assert cli(["replay", out, "--verify"], capsys)[0] == 0
    code, text, err = cli(["diff", out, out], capsys)
    assert code == 0 and "identical" in text


@pytest.mark.parametrize("name", ["counter-nan", "op-args-list", "cpu-path-proc-kmsg",
                                  "header-config-disagree"])
def test_run_from_a_hostile_snapshot_is_one_line(name, tmp_path, base, capsys):
    f = crafted(name, tmp_path, base)
    code, _out, err = cli(["run", "--from", f], capsys)
    assert code == 2 and one_line(err).startswith(f"ptlab: {f}:"), err


@pytest.mark.parametrize("body, text", [
    ("kernel v6.9\n", "kernel v6.9 contradicts the starting state (kernel v7.0)"),
    ("granule 16K\n", "granule 16K contradicts the starting state"),
    ("memory 8G\n", "the directive memory cannot be combined with --from"),
    ("swap 1G\n", "the directive swap cannot be combined with --from"),
    ("mmap big 64K\n", "mapping 'big' already exists in process p0"),
])
def test_run_from_refuses_what_contradicts_the_start(body, text, tmp_path, base, capsys):
    pts = tmp_path / "x.pts"
    pts.write_text(body)
    code, _out, err = cli(["run", pts, "--from", base], capsys)
    assert code == 2 and text in one_line(err), err


def test_run_from_needs_a_snapshot_of_processes(tmp_path, capsys):
    from snapshots.sessions import save_session
    from tui.targets import open_target

    f = tmp_path / "api.ptsnap"
    save_session(open_target("example"), str(f))
    code, _out, err = cli(["run", "--from", f], capsys)
    assert code == 2 and "has no processes or VMAs" in one_line(err)
    code, _out, err = cli(["run", "--from", tmp_path / "nope.pts"], capsys)
    assert code == 2 and "a saved session (FILE.ptsnap) is needed" in one_line(err)
    code, _out, err = cli(["run"], capsys)
    assert code == 2 and "--from FILE.ptsnap" in one_line(err)


def test_a_forged_start_of_a_from_run_is_refused(tmp_path, base, capsys):
    pts = tmp_path / "x.pts"
    pts.write_text("fork kid\n")
    out = tmp_path / "x.ptsnap"
    assert cli(["run", pts, "--from", base, "--save", out], capsys)[0] == 0
    h, ops, cps = hs.read_parts(out)
    hs.forge_pte(cps[0])  # the start (checkpoint 0) given another pfn, every CRC right
    bad = hs.write_parts(tmp_path / "bad.ptsnap", (h, ops, cps))
    for argv in (["replay", bad], ["replay", bad, "--verify"], ["show", bad], ["run", "--from", bad],
                 ["tui", bad]):
        code, _o, err = cli(argv, capsys)
        assert code == 2, (argv, err)
        assert "the starting state (checkpoint 0) does not match the digest" in one_line(err)
    # a start built for one kernel is never run under another
    code, _o, err = cli(["replay", out, "--verify", "--kernel", "v6.9"], capsys)
    assert code == 2 and "built for kernel v7.0" in one_line(err)
