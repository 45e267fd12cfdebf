# SPDX-License-Identifier: GPL-2.0-only
"""User policies that raise, answer nonsense, run forever or misbehave in
other ways, end to end (issue #9, item 5).

The session stops at the op where it happened, at that op's start (undone,
consistent, steppable), with one message naming the op; ``ptlab run
--policy FILE.py:CLASS`` prints that line and exits 2; the TUI shows it and
carries on.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path

import pytest
from tui_support import settle

from engine.policy import PolicyError, _load_user_policy
from engine.scenario import builtin
from engine.scenario_machine import Machine
from engine.session import Position, Session, SessionError
from tui.cli import main

ROOT = Path(__file__).resolve().parent.parent
BAD = ROOT / "tests" / "data" / "policies" / "bad.py"
POLICIES = Path(BAD).parent


def _cfg(policy: str = "mainline"):  # type: ignore[no-untyped-def]
    return builtin("demo").config(record=False, check="end", memory=256 << 20, policy=policy)


@pytest.fixture(scope="module")
def digests():
    """demo's machine digest after each op under the kernel's own policy (the bad
    policies fail at their first call, so until then the runs are identical)."""
    m = Machine(_cfg())
    out = [m.digest()]
    for op in builtin("demo").ops:
        m.apply(op)
        out.append(m.digest())
    return out


MISBEHAVING = [
    ("Raises", "should_try_fold(addr=0x", "raised KeyError: 'boom'"),
    ("Nonsense", "should_try_fold(addr=0x", "returned 'yes please', expected True or False"),
    ("Runaway", "should_try_fold(addr=0x", r"ran for more than 0.3 s \(runaway loop\?\)"),
    ("Exits", "should_try_fold(addr=0x", "raised SystemExit: 0"),
    ("WeirdAnswer", "should_try_fold(addr=0x", "returned <_Weird object>, expected True or False$"),
    ("DeepRecursion", "should_try_fold(addr=0x", "raised RecursionError"),
    ("EndlessScan", "scan()", "yielded more than 1,048,576 candidates|ran for more than 0.3 s"),
    ("ForeignScan", "scan() yielded (Fake, 0x1000)", "not the mm of a running process"),
]


@pytest.mark.parametrize("cls,call,what", MISBEHAVING, ids=[m[0] for m in MISBEHAVING])
def test_a_session_stops_cleanly_at_the_op(cls, call, what, digests, monkeypatch):
    monkeypatch.setenv("PTLAB_POLICY_TIME_LIMIT", "0.3")
    cfg = _cfg(f"{BAD}:{cls}")
    scn = builtin("demo")
    s = Session(lambda: Machine(cfg), scn.ops, checkpoint_ops=5)
    with pytest.raises(SessionError) as e:
        s.run()
    k = s.error[0]
    msg = str(e.value)
    assert msg == s.error[1] and "\n" not in msg
    assert msg.startswith(f"op {k + 1} ({scn.ops[k]}): policy {cls}: {call}") and re.search(what, msg), msg
    # stopped at the op's start: consistent, and steppable
    assert s.position == Position(k) and s.executed == k
    assert s.machine.digest() == digests[k]
    assert s.machine.check_invariants() == []
    s.seek(Position(max(0, k - 2)))
    assert s.machine.digest() == digests[max(0, k - 2)]
    with pytest.raises(SessionError):  # deterministic: the same op fails again
        s.seek(Position(k + 1))
    assert s.position == Position(k) and s.machine.digest() == digests[k]


@pytest.mark.parametrize("spec,what", [
    ("slow_import.py:X", "slow_import.py: importing it ran for more than 0.3 s"),
    ("exit_import.py:X", "exit_import.py: importing it raised SystemExit: 3"),
    ("bad.py:BadInterval", "policy BadInterval: scan_interval must be a whole number of ops"),
    ("bad.py:NameRaises", "policy NameRaises: reading .name raised RuntimeError: no name"),
    ("bad.py:Missing", "has no class 'Missing'"),
])
def test_a_policy_that_cannot_be_loaded(spec, what):
    with pytest.raises(PolicyError) as e:
        _load_user_policy(f"{POLICIES}/{spec}", time_limit=0.3)
    assert what in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("cls", ["Raises", "Runaway", "Exits", "EndlessScan"])
def test_ptlab_run_names_the_op_and_exits_2(cls, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PTLAB_POLICY_TIME_LIMIT", "0.3")
    (tmp_path / "s.pts").write_text("memory 256M\nmthp 64K=always\nmmap a 128K\ntouch a write\n"
                                    "mprotect a +60K 4K r\nmprotect a +60K 4K rw\n")
    for extra in ([], ["--save", str(tmp_path / "x.ptsnap")]):
        code = main(["run", str(tmp_path / "s.pts"), "--policy", f"{BAD}:{cls}", *extra])
        err = capsys.readouterr().err.splitlines()
        assert code == 2 and len(err) == 1, err
        assert err[0].startswith(f"ptlab: {tmp_path / 's.pts'}:") and f": policy {cls}: " in err[0]
        assert " op " in err[0]
        assert not (tmp_path / "x.ptsnap").exists()


def test_as_a_subprocess(tmp_path):
    (tmp_path / "s.pts").write_text("memory 256M\nmmap a 64K\ntouch a write\n")
    r = subprocess.run([sys.executable, "-m", "tui.cli", "run", str(tmp_path / "s.pts"), "--policy",
                        f"{BAD}:Runaway"], cwd=ROOT, capture_output=True, text=True, timeout=60,
                       env={**__import__("os").environ, "PTLAB_POLICY_TIME_LIMIT": "0.3"})
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr == (f"ptlab: {tmp_path / 's.pts'}:3: op 2 (touch a write): policy Runaway: "
                        "should_try_fold(addr=0xfffff7ff0000) ran for more than 0.3 s (runaway loop?)\n")


def test_the_tui_shows_the_failure_and_carries_on(tmp_path):
    from tui.app import PtlabApp
    from tui.targets import open_target

    (tmp_path / "s.pts").write_text("memory 256M\nmthp 64K=always\nmmap a 128K\ntouch a write\n"
                                    "mprotect a +60K 4K r\nmprotect a +60K 4K rw\n")
    s = open_target(str(tmp_path / "s.pts"), policy=f"{BAD}:Nonsense")

    async def body() -> None:
        app = PtlabApp(s, use_keymap=False)
        async with app.run_test(size=(100, 30)) as pilot:
            await settle(app, pilot)
            await pilot.press("r")
            await settle(app, pilot)
            k = s.error[0]
            msg = app.main.messages[-1]
            assert msg.startswith(f"op {k + 1} (") and "policy Nonsense: should_try_fold" in msg
            assert s.position == Position(k) and "\n" not in msg
            await pilot.press("b")  # and it steps as usual
            await settle(app, pilot)
            assert s.position == Position(k - 1) and app.main.ctl.errors == []

    asyncio.run(body())
