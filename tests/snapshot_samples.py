# SPDX-License-Identifier: GPL-2.0-only
"""Sample sessions for the snapshot tests, and a writer for the old format versions.

Not a test module: the ``test_snapshot_*`` files import it.
"""

from __future__ import annotations

import random
import sys
from array import array
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's snapshots/, also as a script

from snapshots import SnapshotHeader, open_snapshot
from snapshots.codec import pack
from snapshots.framing import COMMIT_BODY, Kind, encode_frame, encode_preamble

CREATED = "2025-01-31T12:00:00Z"
COUNTERS = ("pte_reads", "pte_writes", "converts", "folds", "unfolds", "flush_tlb_range", "tlbi", "dsb")
PROT = 0x00E8000000000F43


def header(**kw: Any) -> SnapshotHeader:
    base: dict[str, Any] = dict(kernel="v6.9", granule="16K", cpu="neoverse-v2", policy="any-entry", seed=7,
                                scenario_name="sample", scenario_source="mmap heap 2M\ntouch heap write\n",
                                created=CREATED, tool_version="0.1.0", extra={"mthp": {"64K": "always"}})
    base.update(kw)
    return SnapshotHeader(**base)


def op_records(n: int, seed: int = 1, mixed: bool = False) -> list[tuple[dict, dict, str | bytes]]:
    """``n`` (op, counters, digest) tuples shaped like the session's."""
    rng = random.Random(seed)
    out: list[tuple[dict, dict, str | bytes]] = []
    for i in range(n):
        verb = rng.choice(["touch", "mmap", "munmap", "mprotect", "fork"])
        off = rng.randrange(1 << 16) << 12
        op = {"verb": verb, "args": {"name": "heap", "off": off, "len": 65536, "mode": "write"},
              "line": i + 1, "text": f"{verb} heap +{off:#x} 64K write"}
        counters: dict = {c: rng.randrange(50) for c in COUNTERS}
        digest: str | bytes = f"{rng.getrandbits(128):032x}"
        if mixed:
            if i % 7 == 3:
                counters = {"pte_reads": 1, "cycles": 12.5, "call:contpte_convert": 2}
            if i % 11 == 5:
                counters = {}
            if i % 5 == 1:
                digest = f"D{i}"  # not hex: stored as a string
            if i % 13 == 2:
                digest = bytes([i & 0xFF]) * 5
            if i % 17 == 0:
                op = {"verb": "mthp", "args": {"sizes": [16384, 65536], "on": True, "x": None, "f": 0.5},
                      "line": 0, "text": "mthp 64K=always — ünïcode"}
        out.append((op, counters, digest))
    return out


def table(rng: random.Random, entries: int = 512) -> bytes:
    a = array("Q", bytes(8 * entries))
    pfn = rng.randrange(1 << 20) & ~15
    for i in range(0, entries, 16):
        if rng.random() < 0.7:
            for k in range(16):
                a[i + k] = ((pfn + i + k) << 12) | PROT
    return a.tobytes()


def state(n: int, seed: int = 1, tables: int = 4) -> dict[str, Any]:
    """A checkpoint state: packed page tables (blobs), folio lists, small bytes, nesting."""
    rng = random.Random(seed * 1000 + n)
    shared = table(random.Random(seed), 512)  # the same in every checkpoint: stored once
    return {
        "step": n,
        "mm": [{"pid": 1, "name": "init",
                "tables": [[k << 21, table(rng)] for k in range(tables)] + [[99 << 21, shared]],
                "vmas": [["heap", 0x400000, 0x600000, "rw", True, False]]}],
        "folios": [[rng.randrange(1 << 20), rng.choice([0, 2, 4]), 1, 1] for _ in range(50)],
        "rng": (3, tuple(range(10)), None),
        "small": b"\x00\x01tiny",
        "empty": {},
        "ratio": 0.25,
    }


def plain(v: Any) -> Any:
    """``v`` as it comes back from a snapshot (tuples become lists)."""
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    return v


def load_all(path: Any, **kw: Any) -> tuple[Any, list, dict, bool, list[str]]:
    """Open and read everything: (header, ops, checkpoints, truncated, warnings)."""
    with open_snapshot(path, **kw) as snap:
        ops = list(snap.ops)
        cps = {n: snap.checkpoints[n] for n in snap.checkpoints}
        return snap.header, ops, cps, snap.truncated, snap.warnings


# --- old format versions, written by hand -------------------------------------------------------


def legacy_header_plain(h: SnapshotHeader, version: int) -> dict[str, Any]:
    d = h.to_plain()
    if version == 1:
        sizes = {"4K": 4096, "16K": 16384, "64K": 65536}
        d = {("profile" if k == "kernel" else "cpu_profile" if k == "cpu" else k):
             (sizes[v] if k == "granule" else v) for k, v in d.items()}
    return d


def write_legacy(path: Any, version: int, h: SnapshotHeader, ops: list[tuple[dict, dict, Any]],
                 checkpoints: dict[int, Any], batch: int = 4) -> None:
    """A v1 or v2 file as those versions laid it out (no blobs; v1: one map per op)."""
    from snapshots.op_batches import encode_ops

    out = [encode_preamble(version), encode_frame(Kind.HEADER, pack(legacy_header_plain(h, version)), 1)]
    offsets: dict[str, list[int]] = {"batches": [], "checkpoints": [], "blobs": []}

    def emit(kind: int, payload: bytes, level: int = 1) -> int:
        at = sum(map(len, out))
        out.append(encode_frame(kind, payload, level))
        return at

    emit(Kind.COMMIT, COMMIT_BODY.pack(0, 0), 0)
    for n in sorted(checkpoints):
        if n == 0:
            offsets["checkpoints"] += [0, emit(Kind.CHECKPOINT, pack([0, checkpoints[0]]))]
    for first in range(0, len(ops), batch):
        chunk = ops[first:first + batch]
        if version == 1:
            payload = [first, [{"op": o, "counters": c, "digest": d} for o, c, d in chunk]]
        else:
            payload = encode_ops(first, chunk)
        offsets["batches"] += [first, emit(Kind.OPS, pack(payload))]
        done = first + len(chunk)
        if done in checkpoints and done:
            offsets["checkpoints"] += [done, emit(Kind.CHECKPOINT, pack([done, checkpoints[done]]))]
        emit(Kind.COMMIT, COMMIT_BODY.pack(done, 0), 0)
    index_at = emit(Kind.INDEX, pack({"op_count": len(ops), **offsets}))
    emit(Kind.COMMIT, COMMIT_BODY.pack(len(ops), index_at), 0)
    with open(path, "wb") as f:
        f.write(b"".join(out))


# --- golden files (tests/data/snapshot-v*.ptsnap) -------------------------------------------------------

FIXTURE_OPS = 12


def fixture_content() -> tuple[SnapshotHeader, list[tuple[dict, dict, Any]], dict[int, Any]]:
    """What every golden file holds, whatever its format version."""
    cps = {0: state(0, tables=1), 8: state(8, tables=1)}
    return header(), op_records(FIXTURE_OPS, seed=5, mixed=True), cps


def write_fixture(path: Any, version: int) -> None:
    """Write the golden file of ``version`` (3: the current writer, uncompressed: zlib cannot change it)."""
    from snapshots import save_snapshot

    h, ops, cps = fixture_content()
    if version == 3:
        save_snapshot(path, h, ops, cps, compress_level=0)
    else:
        write_legacy(path, version, h, ops, cps)


if __name__ == "__main__":  # python tests/snapshot_samples.py: regenerate the golden files
    data = Path(__file__).resolve().parent / "data"
    for v in (1, 2, 3):
        write_fixture(data / f"snapshot-v{v}.ptsnap", v)
        print(data / f"snapshot-v{v}.ptsnap")
