# SPDX-License-Identifier: GPL-2.0-only
"""Ctrl-C / Esc during long runs, replays and single long ops (issue #9, item 4).

Long ops poll ``Session.interrupt()`` from inside the machine (every 16
kernel calls or touched pages); an interrupted op is undone from the
session's checkpoints, so the session always stops at a consistent op
boundary -- the same state, bit for bit, as a run that stopped there -- and
carries on from it to the same end. Through the CLI: ``ptlab run`` and
``ptlab replay --verify`` exit 130 with one line; ``ptlab run --save`` saves
the ops done so far.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tui_support import settle

from engine.scenario import builtin, parse
from engine.scenario_machine import Machine
from engine.session import Position, Session, SessionInterrupted

ROOT = Path(__file__).resolve().parent.parent
# line 5 (touch buf write) is the long op: interrupts arrive at its 40th interrupt poll
BIG = "memory 512M\nmmap a 64K\ntouch a write\nmmap buf 256M\ntouch buf write\nmunmap a\n"


def _config(scn):  # type: ignore[no-untyped-def]
    return scn.config(record=False, check="end", memory=min(scn.header.get("memory", 4 << 30), 512 << 20))


def _session(scn) -> Session:  # type: ignore[no-untyped-def]
    cfg = _config(scn)
    return Session(lambda: Machine(cfg), scn.ops, checkpoint_ops=7, checkpoint_events=3000)


class Countdown:
    """interrupt() that turns True at its n-th call (between ops or inside one)."""

    def __init__(self, n: int):
        self.n = n
        self.calls = 0

    def __call__(self) -> bool:
        self.calls += 1
        return self.calls >= self.n


@pytest.fixture(scope="module")
def reference():
    """demo's machine digest after every op, its per-op records and how often
    an uninterrupted run asks interrupt()."""
    scn = builtin("demo")
    m = Machine(_config(scn))
    digests = [m.digest()]
    for op in scn.ops:
        m.apply(op)
        digests.append(m.digest())
    s = _session(scn)
    asked = Countdown(1 << 60)
    s.interrupt = asked
    s.run()
    return scn, digests, [(r.digest, r.counters) for r in s.records], asked.calls


@pytest.mark.parametrize("at", [0.0, 0.05, 0.2, 0.35, 0.5, 0.65, 0.8, 0.97])
def test_an_interrupted_run_stops_at_a_consistent_boundary_and_resumes_identically(reference, at):
    scn, digests, records, calls = reference
    s = _session(scn)
    s.interrupt = Countdown(max(1, int(at * calls)))
    s.run()
    k = s.position.op
    assert s.position == Position(k) and s.executed == k < s.n_ops
    assert s.machine.digest() == digests[k]  # as if the run had stopped there
    s.interrupt = lambda: False
    s.run()
    assert [(r.digest, r.counters) for r in s.records] == records
    assert s.machine.digest() == digests[-1]
    assert s.machine.check_invariants() == []


@pytest.mark.parametrize("n", [3, 50, 400])
def test_interrupted_seeks_steps_and_recordings_keep_the_session_consistent(reference, n):
    scn, digests, records, _ = reference
    s = _session(scn)
    s.run()
    for action in (lambda: s.seek(Position(3)), lambda: s.seek(Position(40)), lambda: s.events_of(33),
                   lambda: s.step("call"), lambda: s.back("op"), lambda: s.reverse_continue(),
                   lambda: s.continue_()):
        s.interrupt = Countdown(n)
        if not s.breakpoints:
            s.add_breakpoint("event:fold")
        with contextlib.suppress(SessionInterrupted):
            action()
        k = s.position.op
        s.interrupt = lambda: False
        with s.uninterruptible():
            s.seek(Position(k))
        assert s.machine.digest() == digests[k]
    s.seek(Position(s.n_ops))
    assert s.machine.digest() == digests[-1]
    assert [(r.digest, r.counters) for r in s.records] == records


def test_an_interrupted_recording_keeps_a_mid_op_position(reference):
    scn, digests, _, _ = reference
    s = _session(scn)
    s.run(until=20)
    s.seek(Position(5, 3))
    s._events_cache.clear()
    s.interrupt = Countdown(1)
    s.machine.kernel.ctx.ticks = 0  # poll at the op's first kernel call (a short op may not poll at all)
    with pytest.raises(SessionInterrupted):
        s.events_of(5)
    assert s.position == Position(5, 3) and s.machine.digest() == digests[5]


def test_a_long_op_stops_at_the_first_poll_after_the_request(report_line):
    """Inside the 256M touch, interrupt() turns True at its 40th call; the op
    must stop at that very poll (polls come every 16 kernel calls or pages, a
    few milliseconds apart) and be undone -- counted in polls, not seconds."""
    scn = parse(BIG, "t.pts")
    s = _session(scn)
    asked = {"in_op": 0, "after": 0}

    def interrupt() -> bool:
        if s.k != 3:
            return False
        asked["in_op"] += 1
        if asked["in_op"] > 40:
            asked["after"] += 1
        return asked["in_op"] >= 40

    s.interrupt = interrupt
    t = time.perf_counter()
    s.run()
    assert s.position == Position(3) and s.executed == 3
    assert asked["in_op"] == 40 and asked["after"] == 0  # no poll after the one that said stop
    ref = Machine(_config(scn))
    for op in list(scn.ops)[:3]:
        ref.apply(op)
    assert s.machine.digest() == ref.digest()
    report_line(f"interrupts: a 256 MiB touch stopped at its 40th poll and undone "
                f"({(time.perf_counter() - t) * 1000:.0f} ms in all, setup included)")


# --- the command line, for real -----------------------------------------------------------------------
DRIVER = ROOT / "tests" / "sigint_driver.py"


def _sigint(tmp_path: Path, args: list[str], line: int, polls: int = 40) -> tuple[int, str, str, dict]:
    """Run ptlab ARGS; a real SIGINT reaches it at the given poll of the op on
    that scenario line (tests/sigint_driver.py), never by the clock."""
    report = tmp_path / "sigint.json"
    report.unlink(missing_ok=True)
    r = subprocess.run([sys.executable, str(DRIVER), str(report), str(line), str(polls), "--", *args],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    state = json.loads(report.read_text())
    assert state["sent"], f"the op on line {line} made fewer than {polls} polls: {state}"
    return r.returncode, r.stdout, r.stderr, state


def test_ctrl_c_in_ptlab_run(tmp_path, report_line):
    (tmp_path / "big.pts").write_text(BIG)
    code, out, err, st = _sigint(tmp_path, ["run", str(tmp_path / "big.pts")], line=5)
    assert (code, err) == (130, "ptlab: interrupted\n")
    assert st["polls_after"] == 0  # Python's default handler stops it at the next bytecode
    # --save: the op in progress is undone, the ops before it are saved and verify
    code, out, err, st2 = _sigint(tmp_path, ["run", str(tmp_path / "big.pts"), "--save",
                                             str(tmp_path / "b.ptsnap"), "--json"], line=5)
    assert code == 130
    assert st2["polls_after"] <= 1  # the handler sets the flag; the next poll stops the op
    assert err == "ptlab: interrupted: saving the ops done so far (Ctrl-C again to abandon the save)\n"
    d = json.loads(out)
    assert d["interrupted"] and d["totals"]["ops"] == 3
    r = subprocess.run([sys.executable, "-m", "tui.cli", "replay", str(tmp_path / "b.ptsnap"), "--verify"],
                       cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "3 ops re-executed, every digest and cost matches" in r.stdout
    report_line(f"interrupts: ptlab run stopped {st['polls_after']} polls after SIGINT, ptlab run --save "
                f"{st2['polls_after']} (3 ops saved, the 4th undone)")


def test_ctrl_c_in_replay_verify(tmp_path):
    """A snapshot whose second op is long: --verify is interrupted inside it."""
    from snapshots.sessions import save_session

    scn = parse("memory 512M\nmmap buf 256M\ntouch buf write\n", "v.pts")
    cfg = scn.config(record=False, check="end").summary()
    from engine.machine_kinds import machine_factory

    s = Session(machine_factory("scenario", cfg), scn.ops, name="v",
                meta={"machine": "scenario", "config": cfg})
    s.run(until=1)
    # the long op's own record is never reached: a placeholder is enough
    from engine.session import OpRecord

    s.records.append(OpRecord({"ops": 1}, 0.0, bytes(16), 0))
    save_session(s, str(tmp_path / "v.ptsnap"), run_remaining=False)
    code, out, err, st = _sigint(tmp_path, ["replay", str(tmp_path / "v.ptsnap"), "--verify", "--json"],
                                 line=3)
    assert code == 130 and st["polls_after"] <= 1
    assert err == "ptlab: interrupted\n" and json.loads(out) == {"error": "interrupted", "exit_status": 130}


# --- the TUI: Esc inside a long op ------------------------------------------------------------------
def test_escape_inside_a_long_op_in_the_tui(tmp_path, monkeypatch):
    """The worker is held at the long op's 40th poll until Esc has been
    pressed, so the op cannot end first however fast the machine is."""
    import threading

    from engine.mm.base import MmContext as Kernel
    from tui.app import PtlabApp
    from tui.targets import open_target

    (tmp_path / "big.pts").write_text(BIG)
    s = open_target(str(tmp_path / "big.pts"))
    held, released = threading.Event(), threading.Event()
    polls = {"in_op": 0}
    poll = Kernel.poll_interrupt

    def holding_poll(self):  # type: ignore[no-untyped-def]
        if s.k == 3 and not released.is_set():
            polls["in_op"] += 1
            if polls["in_op"] == 40:
                held.set()
                released.wait(30)
        return poll(self)

    monkeypatch.setattr(Kernel, "poll_interrupt", holding_poll)

    async def body() -> None:
        app = PtlabApp(s, use_keymap=False)
        async with app.run_test(size=(100, 30)) as pilot:
            await settle(app, pilot)
            await pilot.press("r")  # run to the end: held inside the 4th op
            for _ in range(1200):
                if held.is_set():
                    break
                await asyncio.sleep(0.05)
            assert held.is_set(), "the run never reached the long op"
            await pilot.press("escape")
            released.set()
            await app.workers.wait_for_complete()
            await settle(app, pilot)
            assert s.position == Position(3) and s.executed == 3
            assert any(m.startswith("interrupted at step 3") for m in app.main.messages)
            assert app.main.ctl.errors == []
            ref = Machine(s.machine.config)
            for op in list(s.ops)[:3]:
                ref.apply(op)
            assert s.machine.digest() == ref.digest()

    asyncio.run(body())
