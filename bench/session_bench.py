# SPDX-License-Identifier: GPL-2.0-only
"""A one-million-op session: run it, seek in it, save it, reopen it.

    python -m bench.session_bench [--ops 1000000] [--seeks 200] [--json]

The session is a scenario with ``repeat`` (``SCENARIO`` below: 64 MiB of
64K mTHP heap, and four small ops per round -- touch a 64K folio, mprotect
another one read-only and back, MADV_DONTNEED a third -- so VMAs split and
merge, folios come and go, and checkpoints differ) run through
engine.session.Session on the core-mm machine with the settings the TUI
uses. Targets (docs/benchmarks.md): seek to random steps median <= 20 ms, p99 <= 100 ms;
save <= 10 s, file <= 100 MB, reopen + seek <= 1 s.

``step_back()`` times what the TUI does for a step forward and a step back over each op
of the seed's 1 GiB scenarios (tui.controller do_step / do_back: the move, then the
cells the step changed, which need the op's events): a step back over an op should cost
at most twice the step forward over it.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psutil

from bench.cases import Case, print_cases, progress_line  # noqa: E402
from engine.machine_kinds import machine_factory
from engine.scenario import parse
from engine.session import Position, Session
from snapshots.sessions import open_session, save_session

SCENARIO = """\
# bench: four small ops a round on a 64 MiB heap of 64K folios
memory 256M
swap 64M
mthp 64K=always
mmap heap 64M
repeat {rounds} i
  touch heap +{{(i % 1024) * 64K}} 64K write
  mprotect heap +{{((i * 7) % 1024) * 64K}} 64K r
  mprotect heap +{{((i * 7) % 1024) * 64K}} 64K rw
  madvise heap +{{((i * 13) % 1024) * 64K}} 64K dontneed
end
"""


def make_session(n_ops: int) -> Session:
    text = SCENARIO.format(rounds=max(1, (n_ops - 1) // 4))
    scn = parse(text, "bench-session.pts", "bench-session")
    cfg = scn.config(record=False).summary()
    return Session(machine_factory("scenario", cfg), scn.ops, name=scn.name, source=scn.source,
                   meta={"machine": "scenario", "config": cfg, "description": "bench session"})


def _pct(values: list[float], p: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def run(n_ops: int = 1_000_000, seeks: int = 200, seed: int = 1, tmpdir: str | None = None,
        quiet: bool = False) -> tuple[list[Case], dict]:
    proc = psutil.Process()
    info: dict[str, Any] = {"ops": n_ops}
    s = make_session(n_ops)
    t0 = time.perf_counter()
    s.run(progress=None if quiet else (lambda k, n: progress_line(f"session: run {k:,}/{n:,} ops")))
    info["run_s"] = round(time.perf_counter() - t0, 1)
    info["checkpoints"] = len(s.checkpoints)
    info["rss_mb"] = round(proc.memory_info().rss / 2**20)
    rng = random.Random(seed)
    times = []
    for j in range(seeks):
        k = rng.randrange(s.n_ops + 1)
        t0 = time.perf_counter()
        s.seek(Position(k))
        times.append(time.perf_counter() - t0)
        if not quiet and j % 20 == 0:
            progress_line(f"session: seek {j}/{seeks}")
    med = statistics.median(times) * 1000
    p99 = _pct(times, 99) * 1000
    cases = [
        Case("session: seek to a random step, median", med, "ms", "<= 20 ms", med <= 20),
        Case("session: seek to a random step, p99", p99, "ms", "<= 100 ms", p99 <= 100),
    ]
    with tempfile.TemporaryDirectory(dir=tmpdir) as d:
        path = os.path.join(d, "bench.ptsnap")
        t0 = time.perf_counter()
        save_session(s, path, progress=None if quiet else (
            lambda what, k, n: progress_line(f"session: save {what} {k:,}/{n:,}")))
        save_s = time.perf_counter() - t0
        size_mb = os.path.getsize(path) / 1e6
        del s
        k = random.Random(seed + 1).randrange(n_ops)
        t0 = time.perf_counter()
        loaded = open_session(path)
        loaded.session.seek(Position(k))
        reopen_s = time.perf_counter() - t0
        loaded.snapshot.close()
    cases += [
        Case("session: save", save_s, "s", "<= 10 s", save_s <= 10),
        Case("session: snapshot file size", size_mb, "MB", "<= 100 MB", size_mb <= 100),
        Case("session: reopen + seek", reopen_s, "s", "<= 1 s", reopen_s <= 1),
    ]
    return cases, info


# ops whose step forward takes less than this are not held to the ratio: a step back
# then costs what freeing a big op's cached events or restoring a checkpoint costs
STEP_RATIO_FLOOR_S = 0.1


def _time_each_op(s: Session, move: Any, name: str, back: bool, quiet: bool) -> list[float]:
    """Seconds of ``move(s, "op")`` (tui.controller's do_step, or do_back with ``back``),
    once per op, in the order the moves ran."""
    out = []
    for k in range(s.n_ops):
        if not quiet:
            where = f"back over op {s.n_ops - k}" if back else f"forward over op {k + 1}"
            progress_line(f"step back: {name} {where}")
        t0 = time.perf_counter()
        move(s, "op")
        out.append(time.perf_counter() - t0)
    return out


def step_back(size: int = 1 << 30, names: tuple[str, ...] = ("seed-fork-order0", "seed-munmap-order0"),
              quiet: bool = False) -> tuple[list[Case], dict]:
    """Step forward over every op of each scenario (its first run, recording the op as the
    TUI does), then back over every op; the case is the worst back/forward ratio among
    ops whose forward step takes at least STEP_RATIO_FLOOR_S."""
    from engine.scenario import builtin
    from tui.controller import do_back, do_step

    info: dict[str, Any] = {"size": size, "ops": {}}
    worst = (0.0, "")
    slowest_small = 0.0
    for name in names:
        scn = builtin(name)
        scn = parse(scn.source.replace("1G", str(size)), f"{name}.pts", name)
        cfg = scn.config(record=False).summary()
        s = Session(machine_factory("scenario", cfg), scn.ops, name=name,
                    meta={"machine": "scenario", "config": cfg})
        fwd = _time_each_op(s, do_step, name, False, quiet)
        back = _time_each_op(s, do_back, name, True, quiet)[::-1]
        for k, (f, b) in enumerate(zip(fwd, back, strict=True)):
            info["ops"][f"{name} op {k + 1} ({s.ops[k]})"] = {"forward_s": round(f, 3), "back_s": round(b, 3)}
            if f >= STEP_RATIO_FLOOR_S:
                if b / f > worst[0]:
                    worst = (b / f, f"{name} op {k + 1}")
            else:
                slowest_small = max(slowest_small, b)
    cases = [Case("step back over one op / step forward over it, worst", worst[0], "x", "<= 2x",
                  worst[0] <= 2, note=f"at {worst[1]}; ops under {STEP_RATIO_FLOOR_S:g} s forward: "
                  f"back in {slowest_small:.2f} s at most")]
    return cases, info


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ops", type=int, default=1_000_000)
    ap.add_argument("--seeks", type=int, default=200)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--step-back", action="store_true", help="only the step-back case")
    a = ap.parse_args(argv)
    if a.step_back:
        cases, info = step_back()
        print_cases(cases, info, a.json)
        return 0
    cases, info = run(a.ops, a.seeks)
    print_cases(cases, info, a.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
