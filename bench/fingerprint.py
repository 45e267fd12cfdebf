# SPDX-License-Identifier: GPL-2.0-only
"""Event fingerprints: a guard for optimisations that must not change behaviour.

    python -m bench.fingerprint --write FILE     # record the fingerprints
    python -m bench.fingerprint --check FILE     # recompute and compare

Runs every built-in scenario (1 GiB mappings shrunk to 16 MiB) under several
kernel and CPU profiles, plus fault-in / fork / mprotect / madvise / munmap of
anonymous memory in three folio layouts, and hashes, per op: every event
tuple in record mode, the op's counters in record mode and in count mode,
the op's cycles, the state digest (``Machine.digest()``) and, at the end, the
result of restoring a mid-run checkpoint and re-running to the end. Any
change to an event, a counter, a digest or checkpoint exactness shows up as a
mismatch naming the run and the first op that differs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.scenario import builtin, builtin_names, parse  # noqa: E402
from engine.scenario_machine import (
    Machine,  # noqa: E402
    MachineConfig,
)

SEED_KERNELS = ("baseline", "seed-basic", "seed-batch", "seed-inline", "seed-fold", "v7.0")
KERNELS = ("v6.9", "v6.17", "v7.0")
CPUS = ("neoverse-n1", "apple-m2", "neoverse-v3")


def _shrink(text: str) -> str:
    return re.sub(r"^(\s*mmap\s+\S+\s+)1G\b", r"\g<1>16M", text, flags=re.M)


def runs() -> list[tuple[str, object, dict]]:
    """(label, scenario or op list, overrides)."""
    out: list[tuple[str, object, dict]] = []
    for name in builtin_names():
        sc = builtin(name)
        sc = parse(_shrink(sc.source), f"{name}.pts", name)
        kernels = SEED_KERNELS if name.startswith("seed-") else KERNELS
        for k in kernels:
            for cpu in (CPUS[:2] if name.startswith("seed-") else CPUS):
                out.append((f"{name}/{k}/{cpu}", sc, {"kernel": k, "cpu": cpu}))
    layouts = {"order0": {"thp": "never", "mthp": {}},
               "64K": {"thp": "never", "mthp": {"64K": "always"}},
               "2M": {"thp": "never", "mthp": {"2M": "always"}}}
    for lname, lay in layouts.items():
        text = "mmap buf 8M\ntouch buf write\n" + ("split buf pmd\n" if lname == "2M" else "")
        text += ("fork child\ntouch buf +1M 1M write\nmprotect buf +2M 3M r\n"
                 "madvise buf +5M 1M dontneed\nmunmap buf\n")
        ops = list(parse(text).ops)
        for k in ("seed-basic", "seed-fold", "v7.0"):
            for cpu in ("neoverse-n1", "apple-m2"):
                out.append((f"anon-{lname}/{k}/{cpu}", ops, {"kernel": k, "cpu": cpu, **lay}))
    return out


def _machine(what, over: dict, record: bool) -> tuple[Machine, list]:
    if isinstance(what, list):
        cfg = MachineConfig(memory=256 << 20, check="op", record=record, **over)
        return Machine(cfg), what
    cfg = what.config(record=record, **over)
    return Machine(cfg), list(what.ops)


def fingerprint(label: str, what, over: dict) -> dict:
    m, ops = _machine(what, over, True)
    mc, _ = _machine(what, over, False)
    per_op = []
    mid = len(ops) // 2
    st = None
    for i, op in enumerate(ops):
        if i == mid:
            st = m.state()
        mark = len(m.log.buf)
        c = m.apply(op)
        h = hashlib.blake2b(digest_size=12)
        for ev in m.log.buf[mark:]:
            h.update(repr(ev).encode())
        del m.log.buf[:]
        cc = mc.apply(op)
        cnt = {k: v for k, v in sorted(c.items()) if k != "cycles" and v}
        cntc = {k: v for k, v in sorted(cc.items()) if k != "cycles" and v}
        per_op.append([h.hexdigest(), hashlib.blake2b(repr(cnt).encode(), digest_size=8).hexdigest(),
                       cnt == cntc, round(c["cycles"], 3), round(cc["cycles"], 3), m.digest()[:16]])
    final = m.digest()
    # checkpoint exactness: restore the mid-run state and re-run to the end
    replay = ""
    if st is not None:
        m.restore(st)
        for op in ops[mid:]:
            m.apply(op)
        del m.log.buf[:]
        replay = m.digest()
    return {"label": label, "ops": per_op, "final": final, "replay_ok": replay in ("", final)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--write", metavar="FILE")
    g.add_argument("--check", metavar="FILE")
    ap.add_argument("--only", help="substring of the run labels to include")
    ap.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    results = {}
    bad = 0
    ref = json.loads(Path(a.check).read_text()) if a.check else {}
    todo = [r for r in runs() if not a.only or a.only in r[0]]
    with multiprocessing.Pool(a.jobs) as pool:
        fps = pool.starmap(fingerprint, todo, chunksize=1)
    for fp in fps:
        label = fp["label"]
        results[label] = fp
        if not fp["replay_ok"]:
            print(f"{label}: restoring a checkpoint and re-running does not reach the same state")
            bad += 1
        if any(not o[2] for o in fp["ops"]):
            print(f"{label}: count-mode counters differ from record-mode counters")
            bad += 1
        if a.check:
            r = ref.get(label)
            if r is None:
                print(f"{label}: not in {a.check}")
                continue
            for i, (x, y) in enumerate(zip(r["ops"], fp["ops"], strict=False)):
                if x != y:
                    what_ = ["events", "counters", "count mode", "cycles", "cycles (count)",
                             "digest"]
                    diff = [w for w, p, q in zip(what_, x, y, strict=True) if p != q]
                    print(f"{label}: op {i + 1} differs ({', '.join(diff)})")
                    bad += 1
                    break
            else:
                if r["final"] != fp["final"]:
                    print(f"{label}: final digest differs")
                    bad += 1
    if a.write:
        Path(a.write).write_text(json.dumps(results))
    print(f"{len(results)} runs in {time.perf_counter() - t0:.0f} s, {bad} problems")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
