# SPDX-License-Identifier: GPL-2.0-only
"""Benchmark the ``.ptsnap`` container: save, size, reopen, seek, read.

Targets (docs/benchmarks.md): a one-million-op session saves in <= 10 s into <= 100 MB,
and reopens + seeks to a checkpoint in <= 1 s.

The session is synthetic but shaped like a real one: each op is a scenario
line as ``Op.to_plain()`` gives it (verb, args with a VMA name, offset, length
and mode, line number, source text), 8 cost counters and a 16-byte state
digest as 32 hex characters. Every ``--checkpoint-every`` ops there is a
checkpoint: ``--tables`` packed 4K-granule page tables (4 KiB each, realistic
descriptors: folios of 1-128 pages, some holes, AF/dirty/CONT bits) plus a
2000-folio table and a 256-entry TLB packed as bytes (``--lists``: as lists of
small lists of ints, which costs ~4 ms more per checkpoint), VMAs and RNG
state. Between checkpoints ``--churn`` of the
tables change (1.0: every table differs from the previous checkpoint, the
worst case for the format's table sharing).

Times are wall-clock seconds; ``*_cpu_s`` is this process's CPU time for the
same work, which other jobs on a shared machine disturb less.

Op data comes from pools of 16384 distinct entries, cycled: the writer cannot
tell (zlib's window is 32 KiB, a few hundred ops), and it keeps the benchmark
from needing gigabytes to hold a million distinct dicts. Generating records is
timed separately and reported; it is not part of the save time.

    python bench/snapshot_bench.py                      # the issue's targets
    python bench/snapshot_bench.py --churn 1 --checkpoint-every 1000 --json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sys
import tempfile
import time
from array import array
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from snapshots import SnapshotHeader, SnapshotWriter, open_snapshot, save_snapshot  # noqa: E402

POOL = 16384
VERBS = ["touch", "touch", "touch", "mmap", "munmap", "mprotect", "madvise", "fork", "reclaim", "migrate"]
COUNTERS = ["pte_reads", "pte_writes", "converts", "folds", "unfolds", "flush_tlb_range", "tlbi", "dsb"]
PROT = 0x00E8000000000F43  # valid, AF, SH, attrindx, PXN|UXN
CONT = 1 << 52
DIRTY = 1 << 55
RDONLY = 1 << 7


def make_op_pool(rng: random.Random) -> list[tuple[dict, dict, str]]:
    pool = []
    for i in range(POOL):
        verb = rng.choice(VERBS)
        name = rng.choice(["heap", "stack", "anon0", "anon1", "file0", "libc"])
        off = rng.randrange(0, 1 << 18) << 12
        length = rng.choice([4096, 16384, 65536, 1 << 21])
        mode = rng.choice(["read", "write"])
        text = f"{verb} {name} +{off:#x} {length // 1024}K {mode}"
        op = {"verb": verb, "args": {"name": name, "off": off, "len": length, "mode": mode},
              "line": i + 1, "text": text}
        counters = {c: rng.randrange(0, 64) if rng.random() < 0.6 else 0 for c in COUNTERS}
        digest = hashlib.blake2b(i.to_bytes(8, "little"), digest_size=16).hexdigest()
        pool.append((op, counters, digest))
    return pool


def make_table(rng: random.Random) -> bytes:
    a = array("Q", bytes(4096))
    i = 0
    while i < 512:
        n = rng.choice([1, 1, 16, 16, 32, 64, 128])
        if rng.random() < 0.15:
            i += n
            continue
        pfn = rng.randrange(1 << 22) & ~(n - 1)
        prot = PROT | (CONT if n >= 16 else 0) | (RDONLY if rng.random() < 0.3 else 0)
        for k in range(min(n, 512 - i)):
            a[i + k] = ((pfn + k) << 12) | prot | (DIRTY if rng.random() < 0.3 else 0)
        i += n
    return a.tobytes()


def mutate_table(rng: random.Random, t: bytes) -> bytes:
    """The same table after some ops: an aligned run of entries is dirtied/cleaned, remapped or unmapped."""
    a = array("Q", t)
    n = rng.choice([1, 16, 16, 32, 64])
    start = rng.randrange(512 // n) * n
    what = rng.random()
    pfn = rng.randrange(1 << 22) & ~(n - 1)
    for k in range(start, start + n):
        if what < 0.5:
            a[k] ^= DIRTY if a[k] else 0
        elif what < 0.8:
            a[k] = ((pfn + k - start) << 12) | PROT | (CONT if n >= 16 else 0)
        else:
            a[k] = 0
    return a.tobytes()


def u64s(values) -> bytes:
    return array("Q", values).tobytes()


def checkpoints(rng: random.Random, n_ops: int, every: int, n_tables: int, churn: float,
                lists: bool = False):
    """Yield (op_number, plain state) for 0, every, 2*every, ...

    The folio table (2000 folios) and the TLB (256 entries) are packed as
    bytes of u64 fields, as ``snapshots`` recommends for big homogeneous
    tables, or with ``lists`` as lists of small lists of ints.
    """
    tables = [make_table(rng) for _ in range(n_tables)]
    folios = [[rng.randrange(1 << 22), rng.choice([0, 0, 2, 4, 9]), 1, 1, 0] for _ in range(2000)]
    for n in range(0, n_ops + 1, every):
        if n:
            k = max(1, round(churn * n_tables)) if churn > 0 else 0
            for j in rng.sample(range(n_tables), k):
                tables[j] = mutate_table(rng, tables[j])
            for f in rng.sample(folios, 50):
                f[2] = rng.randrange(1, 4)
        yield n, {
            "mm": [{"pid": 1, "tables": [[j << 21, t] for j, t in enumerate(tables)],
                    "pmd_leaves": [], "vmas": [["heap", 0x400000, 0x400000 + (n_tables << 21), 3, 1, 0]]}],
            "folios": [list(f) for f in folios] if lists else u64s(x for f in folios for x in f),
            "tlb": ([[rng.randrange(1 << 36), 1, 0] for _ in range(256)] if lists
                    else u64s(x for _ in range(256) for x in (rng.randrange(1 << 36), 1, 0))),
            "rng": list(range(625)),
            "counters": {c: n * 3 for c in COUNTERS},
        }


def ops(pool, n_ops: int):
    for i in range(n_ops):
        yield pool[i % POOL]


def run(args: argparse.Namespace) -> dict:
    rng = random.Random(args.seed)
    t0 = time.perf_counter()
    pool = make_op_pool(rng)
    cks = list(checkpoints(random.Random(args.seed + 1), args.ops, args.checkpoint_every, args.tables,
                           args.churn, args.lists))
    gen = time.perf_counter() - t0
    header = SnapshotHeader(scenario_name="bench", scenario_source="# synthetic\n",
                            created="2025-01-01T00:00:00Z")
    out: dict = {"ops": args.ops, "checkpoint_every": args.checkpoint_every, "tables": args.tables,
                 "churn": args.churn, "state": "lists" if args.lists else "bytes", "checkpoints": len(cks),
                 "generate_s": round(gen, 2)}
    with tempfile.TemporaryDirectory(dir=args.dir) as d:
        path = os.path.join(d, "bench.ptsnap")
        t0, c0 = time.perf_counter(), time.process_time()
        save_snapshot(path, header, ops(pool, args.ops), cks)
        out["save_s"] = round(time.perf_counter() - t0, 2)
        out["save_cpu_s"] = round(time.process_time() - c0, 2)  # less disturbed by other jobs on the host
        out["size_mb"] = round(os.path.getsize(path) / 1e6, 1)
        if args.streaming:
            p2 = os.path.join(d, "stream.ptsnap")
            t0, c0 = time.perf_counter(), time.process_time()
            it = iter(cks)
            nxt = next(it, None)
            with SnapshotWriter(p2, header) as w:
                for rec in ops(pool, args.ops):
                    if nxt is not None and nxt[0] == w.op_count:
                        w.add_checkpoint(*nxt)
                        nxt = next(it, None)
                    w.add_op(*rec)
                if nxt is not None:
                    w.add_checkpoint(*nxt)
            out["stream_save_s"] = round(time.perf_counter() - t0, 2)
            out["stream_save_cpu_s"] = round(time.process_time() - c0, 2)
        del cks
        target = random.Random(args.seed + 2).randrange(args.ops)
        t0 = time.perf_counter()
        with open_snapshot(path) as snap:
            cp = snap.checkpoint_for(target)
            assert cp is not None
            first = snap.ops[cp.op_number] if cp.op_number < len(snap.ops) else None
            out["open_seek_s"] = round(time.perf_counter() - t0, 3)
            out["seek_to"] = [target, cp.op_number]
            assert first is None or first.number == cp.op_number
            t0 = time.perf_counter()
            n = sum(1 for _ in snap.ops)
            out["read_all_ops_s"] = round(time.perf_counter() - t0, 2)
            assert n == args.ops
        t0 = time.perf_counter()
        with open_snapshot(path, scan=True) as snap:
            out["open_scan_s"] = round(time.perf_counter() - t0, 2)
            assert len(snap.ops) == args.ops
    out["targets_met"] = out["save_s"] <= 10 and out["size_mb"] <= 100 and out["open_seek_s"] <= 1
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ops", type=int, default=1_000_000)
    p.add_argument("--checkpoint-every", type=int, default=5000)
    p.add_argument("--tables", type=int, default=75, help="4 KiB page tables per checkpoint (75: 300 KiB)")
    p.add_argument("--churn", type=float, default=0.25, help="fraction of tables changed between checkpoints")
    p.add_argument("--lists", action="store_true",
                   help="folio table and TLB as lists of lists of ints instead of packed bytes")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--streaming", action="store_true",
                   help="also time SnapshotWriter (fsync every 10000 ops)")
    p.add_argument("--dir", default=None, help="where to write the file (default: the temp dir)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    out = run(args)
    if args.json:
        print(json.dumps(out))
    else:
        for k, v in out.items():
            print(f"{k:>18}: {v}")
    return 0 if out["targets_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
