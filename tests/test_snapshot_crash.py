# SPDX-License-Identifier: GPL-2.0-only
"""Snapshots: a writer killed with SIGKILL at any moment never leaves a torn file behind.

Each case forks a child that saves and is killed at a point the test picks (a
random byte of the write, or just before the rename) -- never after a timed
delay, which on a loaded machine mostly missed the save. The target must then hold either the previous file,
byte for byte, or the complete new one; a streaming writer's ``.partial`` file
must load up to its last commit.
"""

from __future__ import annotations

import os
import random
import select
import signal
import time

import pytest
from snapshot_samples import header, op_records, state

from snapshots import SnapshotWriter, open_snapshot, save_snapshot
from snapshots.errors import SnapshotFormatError

KILLS = 30
STREAM_KILLS = 12


def _fork(fn) -> int:
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 0
        try:
            fn()
        except BaseException:  # noqa: BLE001
            code = 1
        os._exit(code)
    return pid


def _stopped_child(fn, stop_after: int | None, stop_before_rename: bool) -> tuple[int, int]:
    """Fork a child that runs fn but stops for good -- after writing ``stop_after``
    bytes, or just before renaming the finished file -- and then says so on a
    pipe. Returns (pid, read end). Where a kill lands is decided by the test, not
    by the clock: on a loaded machine a timed kill mostly missed the save."""
    r, w = os.pipe()

    def child() -> None:
        os.close(r)
        from snapshots import fsio

        real_write = fsio.FileSystem.write
        written = [0]

        def stop() -> None:
            os.write(w, b"x")
            time.sleep(3600)

        def write(self, fd: int, data: memoryview) -> int:  # type: ignore[no-untyped-def]
            if stop_after is not None and written[0] + len(data) > stop_after:
                if stop_after > written[0]:
                    real_write(self, fd, data[:stop_after - written[0]])
                stop()
            n = real_write(self, fd, data)
            written[0] += n
            return n

        def replace(self, src: str, dst: str) -> None:  # type: ignore[no-untyped-def]
            stop()

        fsio.FileSystem.write = write  # type: ignore[method-assign]
        if stop_before_rename:
            fsio.FileSystem.replace = replace  # type: ignore[method-assign]
        fn()

    pid = _fork(child)
    os.close(w)
    return pid, r


def _kill_when_stopped(pid: int, r: int) -> tuple[bool, int]:
    """(whether the child stopped before finishing, its wait status)."""
    ready, _, _ = select.select([r], [], [], 120)
    stopped = bool(ready) and os.read(r, 1) == b"x"
    os.close(r)
    if stopped:
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    return stopped, status


def test_sigkill_during_save_never_tears_the_file(tmp_path):
    rng = random.Random(5)
    ops = op_records(12_000, seed=3)
    cps = {0: state(0, tables=40), 6000: state(6000, tables=40), 12_000: state(12_000, tables=40)}
    target = tmp_path / "run.ptsnap"

    def save(gen: int) -> None:
        save_snapshot(target, header(seed=gen), ops, cps)

    save(0)
    size = target.stat().st_size
    previous = target.read_bytes()
    gen = 0
    outcomes = {"previous": 0, "new": 0}
    for i in range(KILLS):
        # a third each: killed mid-write (at a random byte), killed with the file
        # complete but not yet renamed, left to finish
        kind = i % 3
        pid, r = _stopped_child(lambda g=i + 1: save(g), rng.randrange(size) if kind == 0 else None,
                                kind == 1)
        stopped, status = _kill_when_stopped(pid, r)
        assert stopped == (kind != 2)
        data = target.read_bytes()
        if kind != 2:
            assert data == previous, f"kill {i} ({'mid-write' if kind == 0 else 'before the rename'})"
            outcomes["previous"] += 1
            continue
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
        with open_snapshot(target) as snap:  # the whole new file
            assert not snap.truncated and snap.warnings == []
            assert snap.header.seed == i + 1 and len(snap.ops) == len(ops)
            snap.verify()
        outcomes["new"] += 1
        previous, gen = data, i + 1
    assert outcomes == {"previous": 20, "new": 10}
    with open_snapshot(target) as snap:  # and the last good file is what is there
        assert snap.header.seed == gen


def test_sigkill_during_a_streaming_run_keeps_every_commit(tmp_path):
    rng = random.Random(9)
    ops = op_records(20_000, seed=4)
    target = tmp_path / "stream.ptsnap"
    partial = str(target) + ".partial"

    def run() -> None:
        with SnapshotWriter(target, header(), commit_every=500, batch_size=128, fsync=False) as w:
            w.add_checkpoint(0, state(0, tables=2))
            for rec in ops:
                w.add_op(*rec)
                if w.op_count % 5000 == 0:
                    w.add_checkpoint(w.op_count, state(w.op_count, tables=2))

    run()
    size = target.stat().st_size
    target.unlink()
    recovered = []
    for _ in range(STREAM_KILLS):
        pid, r = _stopped_child(run, rng.randrange(size), False)  # killed at a random byte
        assert _kill_when_stopped(pid, r)[0]
        path = target if target.exists() else partial
        if path == partial and os.path.getsize(partial) == 0:
            # killed between creating the partial file and writing its preamble (a
            # loaded machine may not have run the child that far): nothing to recover,
            # and the reader says so in one line
            with pytest.raises(SnapshotFormatError, match="empty file, not a ptlab snapshot"):
                open_snapshot(path)
            recovered.append(0)
            os.unlink(partial)
            continue
        with open_snapshot(path) as snap:
            n = len(snap.ops)
            # (a kill after the last commit but before the rename leaves every op in the
            # .partial file, with or without the final commit)
            if path == partial and n < len(ops):
                assert snap.truncated
            if path != partial:
                assert not snap.truncated
            assert n % 500 == 0 or n == len(ops)
            assert [(r.op, r.counters, r.digest) for r in snap.ops] == ops[:n]
            assert all(k <= n for k in snap.checkpoints) and (0 in snap.checkpoints or n == 0)
            if snap.truncated:
                assert f"recovered {n} ops; file truncated after op {n}" in snap.warnings[-1]
        recovered.append(n)
        if target.exists():
            target.unlink()
    assert any(0 < n < len(ops) for n in recovered), recovered
