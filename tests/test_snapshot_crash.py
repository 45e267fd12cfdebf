# SPDX-License-Identifier: GPL-2.0-only
"""Snapshots: a writer killed with SIGKILL at any moment never leaves a torn file behind.

Each case forks a child that saves and kills it after a random delay (within
the time a save takes). The target must then hold either the previous file,
byte for byte, or the complete new one; a streaming writer's ``.partial`` file
must load up to its last commit.
"""

from __future__ import annotations

import os
import random
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


def _kill_after(pid: int, delay: float) -> int:
    time.sleep(delay)
    os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    return status


def test_sigkill_during_save_never_tears_the_file(tmp_path):
    rng = random.Random(5)
    ops = op_records(12_000, seed=3)
    cps = {0: state(0, tables=40), 6000: state(6000, tables=40), 12_000: state(12_000, tables=40)}
    target = tmp_path / "run.ptsnap"

    def save(gen: int) -> None:
        save_snapshot(target, header(seed=gen), ops, cps)

    t0 = time.perf_counter()
    save(0)
    duration = time.perf_counter() - t0
    previous = target.read_bytes()
    gen = 0
    outcomes = {"previous": 0, "new": 0}
    for i in range(KILLS):
        status = _kill_after(_fork(lambda g=i + 1: save(g)), rng.uniform(0, duration * 1.1))
        data = target.read_bytes()
        if data == previous:
            outcomes["previous"] += 1
            continue
        # not the previous file: then it must be the whole new one
        with open_snapshot(target) as snap:
            assert not snap.truncated and snap.warnings == []
            assert snap.header.seed == i + 1 and len(snap.ops) == len(ops)
            snap.verify()
        outcomes["new"] += 1
        previous, gen = data, i + 1
        assert os.WIFSIGNALED(status) or os.WEXITSTATUS(status) == 0
    assert outcomes["previous"] >= KILLS // 3, outcomes  # most kills landed in the middle of a save
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

    t0 = time.perf_counter()
    run()
    duration = time.perf_counter() - t0
    target.unlink()
    recovered = []
    for _ in range(STREAM_KILLS):
        _kill_after(_fork(run), rng.uniform(0.05, 1.0) * duration)
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
