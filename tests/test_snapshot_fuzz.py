# SPDX-License-Identifier: GPL-2.0-only
"""Snapshots: corrupted, truncated and hostile files.

Every file, however damaged or malicious, must end in a one-line
``SnapshotError`` or a clean (possibly partial) load — never another
exception, never a hang, never an allocation beyond the reader's limits.

Two fuzzers:

* a seeded mutation loop (``CASES`` cases, reproducible) over a small corpus
  of good files: bit flips, byte stomps, truncation, insertion, deletion,
  splicing, absurd record lengths, and — because a CRC catches almost every
  blind mutation — *structure-aware* mutations that rewrite a record's payload
  and then fix its CRC: hostile msgpack (huge declared lengths, deep nesting,
  ext and timestamp types, bad UTF-8, int keys, junk), wrong types in every
  field of every record kind, kind swaps, unknown flags, bad zlib streams and
  a zlib bomb, bogus index offsets and commit counts;
* hypothesis, over arbitrary bytes after a valid preamble and header, and over
  positions and values chosen to break the corpus files.

Each case loads the file (fast path, and for some cases a forced scan), reads
every op and every checkpoint, under a per-case alarm. The number of cases is
printed in the pytest summary (and recorded in docs/fuzzing.md).
"""

from __future__ import annotations

import os
import random
import re
import resource
import shutil
import signal
import struct
import tempfile
import time
import zlib
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from run_summary import Tally
from snapshot_samples import header, op_records, state, write_legacy

from snapshots import SnapshotError, SnapshotWriter, open_snapshot, save_snapshot
from snapshots.codec import pack
from snapshots.framing import FRAME, FRAME_SIZE, PREAMBLE_SIZE, Kind, frame_crc

# A longer campaign: PTLAB_FUZZ_CASES=100000 PTLAB_FUZZ_SEED=7 python -m pytest tests/test_snapshot_fuzz.py
CASES = int(os.environ.get("PTLAB_FUZZ_CASES", 3600))  # seeded mutation cases
SEED = int(os.environ.get("PTLAB_FUZZ_SEED", 20250131))
HYPOTHESIS_EXAMPLES = 250  # per hypothesis test
CASE_SECONDS = 5.0  # a case taking longer than this is a hang

_counts = {"mutation": 0, "loaded": 0, "partial": 0, "error": 0}
# the hypothesis tests' examples, summed over the xdist workers: one line in the summary at the end
EXAMPLES = Tally("snapshot fuzz: {examples} hypothesis examples "
                 f"(3 tests, up to {HYPOTHESIS_EXAMPLES} each), every one a clean load or a SnapshotError")


class Hang(Exception):
    pass


@contextmanager
def alarm(seconds: float):
    def on_alarm(signum, frame):
        raise Hang(f"took more than {seconds} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def exercise(path: Any, scan: bool = False) -> str:
    """Load everything; 'loaded', 'partial' or 'error' (a one-line SnapshotError)."""
    name = str(path)
    try:
        with open_snapshot(path, scan=scan) as snap:
            n = sum(1 for _ in snap.ops)
            assert n == len(snap.ops)
            if n:
                snap.ops[n - 1]
                snap.ops[n // 2]
            for k in snap.checkpoints:
                snap.checkpoints[k]
            snap.checkpoint_for(n)
            repr(snap.header)
            assert all("\n" not in w for w in snap.warnings)
            return "partial" if snap.truncated else "loaded"
    except SnapshotError as e:
        msg = str(e)
        assert "\n" not in msg and msg.startswith(name), msg
        return "error"


@pytest.fixture(scope="module")
def case_dir(tmp_path_factory):
    """Where the cases are written: a RAM file system when there is one (writing thousands of small
    files to a disk-backed /tmp costs more than reading them), else pytest's tmp dir."""
    if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):
        d = tempfile.mkdtemp(prefix="ptlab-fuzz-", dir="/dev/shm")
        yield Path(d)
        shutil.rmtree(d, ignore_errors=True)
    else:
        yield tmp_path_factory.mktemp("fuzz")


# --- the corpus ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> list[bytes]:
    d = tmp_path_factory.mktemp("corpus")
    files = []
    p = d / "full.ptsnap"
    with SnapshotWriter(p, header(), commit_every=64, batch_size=32, fsync=False) as w:
        w.add_checkpoint(0, state(0, tables=2))
        for rec in op_records(200, mixed=True):
            w.add_op(*rec)
            if w.op_count in (100, 200):
                w.add_checkpoint(w.op_count, state(w.op_count, tables=2))
    files.append(p.read_bytes())
    files.append(files[0][:len(files[0]) * 2 // 3])  # a writer that died
    save_snapshot(p, header(), op_records(60, mixed=True), {0: state(0, tables=1), 60: state(60, tables=1)},
                  compress_level=0, commit_every=16)
    files.append(p.read_bytes())  # uncompressed: mutations reach msgpack directly
    for v in (1, 2):
        cps = {0: state(0, tables=1), 8: state(8, tables=1)}
        write_legacy(p, v, header(), op_records(24, mixed=True), cps)
        files.append(p.read_bytes())
    return files


def parse(data: bytes) -> list[tuple[int, int, int, bytes]]:
    """(offset, kind, flags, body) of each whole record, stopping at the first that does not fit."""
    out = []
    pos = PREAMBLE_SIZE
    while pos + FRAME_SIZE <= len(data):
        length, kind, flags, _crc = FRAME.unpack_from(data, pos)
        if pos + FRAME_SIZE + length > len(data):
            break
        out.append((pos, kind, flags, data[pos + FRAME_SIZE:pos + FRAME_SIZE + length]))
        pos += FRAME_SIZE + length
    return out


def frame(kind: int, flags: int, body: bytes) -> bytes:
    return FRAME.pack(len(body), kind, flags, frame_crc(len(body), kind, flags, body)) + body


def payload_of(flags: int, body: bytes) -> bytes:
    """The payload of a record body (raising zlib.error for bad or bomb-sized zlib data)."""
    if not flags & 1:
        return body
    d = zlib.decompressobj()
    out = d.decompress(body, 1 << 20)
    if d.unconsumed_tail:
        raise zlib.error("too big")
    return out


# --- hostile payloads -------------------------------------------------------------------------------

HOSTILE: list[bytes] = [
    b"\x91" * 40 + b"\xc0",  # deeper than max_depth
    b"\x91" * 3000 + b"\xc0",  # deeper than msgpack's own stack
    b"\x81\xa1k" * 300 + b"\xc0",
    b"\xdd\xff\xff\xff\xff",  # array32 claiming 4G elements
    b"\xdf\xff\xff\xff\xff",  # map32 claiming 4G pairs
    b"\xc6\xff\xff\xff\xff" + b"x" * 10,  # bin32 claiming 4 GiB
    b"\xdb\xff\xff\xff\xff",  # str32 claiming 4 GiB
    b"\xc9\xff\xff\xff\xff\x05",  # ext32
    b"\xd6\xff\x00\x00\x00\x00",  # timestamp (ext -1)
    b"\xd7\xff" + b"\x00" * 8,
    b"\xd4\x05\x00",  # fixext1
    b"\xc7\x03\x01abc",  # ext8
    b"\xa3\xff\xfe\xfd",  # invalid UTF-8
    b"\x81\x01\x02",  # int map key
    b"\x81\xc4\x01k\x01",  # bytes map key
    b"\x81\x91\x01\x02",  # array map key
    b"\x92\x01",  # ends early
    b"\xc1",  # never-used byte
    b"\x90\x90",  # junk after the object
    b"",
    b"\xcb\x7f\xf8\x00\x00\x00\x00\x00\x00",  # NaN
    pack(None), pack(-1), pack(2**64 - 1), pack("str"), pack(b"bin"), pack([]), pack({}),
    pack([None] * 7), pack([0, 0, [], [], None, [], b""]), pack([0, 2**63, [{}], [[]], None, [], b"\x00"]),
    pack([0, 1, [{}], [["a"]], None, [1, 2], b"\x00" * 16]),
    pack([0, 1, [{}], [["a", "a"]], None, [1, 2], ["x"]]),
    pack([0, 2, [{}, {}], [["a"], []], [0, 5], [1], ["x", "y"]]),
    pack([0, 1, [{1: 2}], [[]], None, [], ["x"]]),
    pack([0, {}, [[[0], 0]]]), pack([0, {"a": None}, [[["a"], 99]]]), pack([0, [None], [[[5], 0]]]),
    pack([0, {"a": None}, [[["a", "b"], 0]]]), pack([0, {"a": 1}, [[["a"], 0]]]), pack([0, [], [[[], 0]]]),
    pack([0, {"a": None}, [[["a"], 0], [["a"], 0]]]), pack([5, 0, b"\x00" * 9]), pack([0, 1, b"\x00" * 9]),
    pack([0, 7, b""]), pack({"op_count": 0, "batches": [0], "checkpoints": [], "blobs": []}),
    pack({"op_count": 5, "batches": [0, 16, 0, 16], "checkpoints": [9, 16], "blobs": [1 << 40]}),
    pack({"op_count": 1, "batches": [0, 999999], "checkpoints": [], "blobs": []}),
    pack({"op_count": 1, "batches": [0, 16], "checkpoints": [0, 16, 1, 16], "blobs": [16, 16]}),
    pack({"tool": "ptlab", "created": "x"}), pack({"tool": "other"}),
]



def _bomb() -> bytes:
    """A zlib stream that inflates past the op batch limit (64 MiB + 1 zeros), made in 1 MiB steps."""
    c = zlib.compressobj(1)
    mib = bytes(1 << 20)
    return b"".join(c.compress(mib) for _ in range(64)) + c.compress(b"\0") + c.flush()


_BOMB = _bomb()


def random_plain(rng: random.Random, depth: int = 0) -> Any:
    r = rng.random()
    if depth > 4 or r < 0.45:
        return rng.choice([None, True, False, 0, -1, 1, 2**63, -(2**63), 2**64 - 1, 1.5, float("inf"), "",
                           "x", "ünï", b"", b"\x00" * rng.choice([1, 8, 16, 600]), rng.randrange(-99, 99)])
    if r < 0.75:
        return [random_plain(rng, depth + 1) for _ in range(rng.randrange(5))]
    return {rng.choice(["a", "op", "verb", "args", "k" * rng.randrange(3)]): random_plain(rng, depth + 1)
            for _ in range(rng.randrange(4))}


def mutate_plain(obj: Any, rng: random.Random) -> Any:
    """``obj`` (a decoded payload) with one node somewhere replaced, dropped or extended."""
    if not isinstance(obj, (list, dict)) or not obj or rng.random() < 0.15:
        return random_plain(rng)
    if isinstance(obj, list):
        obj = list(obj)
        i = rng.randrange(len(obj))
        r = rng.random()
        if r < 0.15:
            del obj[i]
        elif r < 0.25:
            obj.append(random_plain(rng))
        else:
            obj[i] = mutate_plain(obj[i], rng)
        return obj
    obj = dict(obj)
    k = rng.choice(list(obj))
    r = rng.random()
    if r < 0.15:
        del obj[k]
    elif r < 0.25:
        obj[rng.choice(["x", k + "_"])] = random_plain(rng)
    else:
        obj[k] = mutate_plain(obj[k], rng)
    return obj


def mutate(data: bytes, corpus: list[bytes], rng: random.Random) -> tuple[str, bytes]:
    """One random mutation of ``data``: (what was done, result)."""
    b = bytearray(data)
    recs = parse(data)
    how = rng.choice(["bitflip", "bytes", "truncate", "insert", "delete", "dup", "splice", "length",
                      "payload", "payload", "structure", "structure", "structure", "hostile", "hostile",
                      "kind", "flags", "zlib", "commit", "header", "inner", "inner"])
    if how == "bitflip":
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
    elif how == "bytes":
        for _ in range(rng.randint(1, 8)):
            b[rng.randrange(len(b))] = rng.choice([0, 0xFF, 0x7F, 0x80, rng.randrange(256)])
    elif how == "truncate":
        del b[rng.randrange(len(b)):]
    elif how == "insert":
        i = rng.randrange(len(b) + 1)
        b[i:i] = rng.randbytes(rng.randint(1, 64))
    elif how == "delete":
        i = rng.randrange(len(b))
        del b[i:i + rng.randint(1, 256)]
    elif how == "dup":
        i = rng.randrange(len(b))
        j = min(len(b), i + rng.randint(1, 2048))
        k = rng.randrange(len(b))
        b[k:k] = b[i:j]
    elif how == "splice":
        other = rng.choice(corpus)
        i, j = rng.randrange(len(b)), rng.randrange(len(other))
        b = b[:i] + other[j:]
    elif recs:
        b = _mutate_record(b, data, recs, how, rng)
    return how, bytes(b)


def _mutate_record(b: bytearray, data: bytes, recs: list, how: str, rng: random.Random) -> bytearray:
    """Rewrite one record (its length, payload, kind or flags), mostly keeping its CRC right."""
    off, kind, flags, body = rng.choice(recs)
    end = off + FRAME_SIZE + len(body)
    if how == "length":
        n = rng.choice([0xFFFFFFFF, 0x7FFFFFFF, 1 << 28, len(data), len(body) + 1, max(0, len(body) - 1), 0])
        struct.pack_into("<I", b, off, n)
        if rng.random() < 0.5:  # and make the CRC agree, so only the length check can catch it
            struct.pack_into("<I", b, off + 6, frame_crc(n, kind, flags, bytes(b[off + FRAME_SIZE:end])))
    else:
        try:
            payload = payload_of(flags, body)
        except zlib.error:
            payload = body
        new_flags = flags
        if how == "payload":  # stomp on the decompressed payload, then recompress and fix the CRC
            p = bytearray(payload)
            for _ in range(rng.randint(1, 6)):
                if p:
                    p[rng.randrange(len(p))] = rng.randrange(256)
            payload = bytes(p)
        elif how == "structure":
            try:
                obj = msgpack.unpackb(payload, raw=False, strict_map_key=False)
                payload = pack(mutate_plain(obj, rng))
            except Exception:  # noqa: BLE001 - not msgpack (a commit): stomp instead
                payload = rng.randbytes(len(payload))
        elif how == "hostile":
            payload = rng.choice(HOSTILE)
        elif how == "kind":
            kind = rng.choice([1, 2, 3, 4, 5, 6, 0, 7, 255])
        elif how == "flags":
            new_flags = rng.choice([2, 0x80, 0xFF, flags ^ 1])
        elif how == "zlib":
            if rng.random() < 0.02:
                payload, new_flags = b"", 0x100  # marker: use the bomb below
            else:
                payload = rng.randbytes(rng.randint(0, 40))
                new_flags = 0x101  # marker: store as is, claim zlib
        elif how == "commit":
            commits = [r for r in recs if r[1] == Kind.COMMIT]
            off, kind, flags, body = rng.choice(commits or recs)
            end = off + FRAME_SIZE + len(body)
            payload = struct.pack("<QQ", rng.choice([0, 1, 2**64 - 1, rng.randrange(1000)]),
                                  rng.choice([0, 16, off, len(data), rng.randrange(len(data))]))
            new_flags = 0
        elif how == "header":
            off, kind, flags, body = recs[0]
            end = off + FRAME_SIZE + len(body)
            try:
                payload = pack(mutate_plain(msgpack.unpackb(payload_of(flags, body), raw=False), rng))
            except Exception:  # noqa: BLE001 - an earlier mutation broke it already
                payload = rng.randbytes(len(body))
        elif how == "inner":  # a v3 op batch: mutate the columns inside its own zlib stream
            batches = [r for r in recs if r[1] == Kind.OPS]
            if batches:
                off, kind, flags, body = rng.choice(batches)
                end = off + FRAME_SIZE + len(body)
                try:
                    payload = _mutate_inner(payload_of(flags, body), rng)
                except zlib.error:  # an earlier mutation broke it already
                    payload = rng.randbytes(len(body))
        if new_flags == 0x100:
            new_body, new_flags = _BOMB, 1
        elif new_flags == 0x101:
            new_body, new_flags = payload, 1
        elif new_flags & 1 and rng.random() < 0.8:
            new_body = zlib.compress(payload, 1)
        else:
            new_body, new_flags = payload, new_flags & ~1
        b = b[:off] + frame(kind, new_flags, new_body) + b[end:]
    return b


def _mutate_inner(payload: bytes, rng: random.Random) -> bytes:
    try:
        outer = msgpack.unpackb(payload, raw=False)
        first, count, codec, inner, digests = outer
        fields = msgpack.unpackb(zlib.decompress(inner) if codec == 1 else inner, raw=False,
                                 strict_map_key=False)
    except Exception:  # noqa: BLE001 - not a v3 body (v1/v2 file, or broken already)
        return rng.randbytes(len(payload))
    fields = mutate_plain(fields, rng)
    inner = pack(fields)
    codec = rng.choice([0, 1, 1, 1, 2, -1])
    if codec == 1:
        inner = zlib.compress(inner, 1)
    return pack([first, count if rng.random() < 0.9 else rng.choice([0, 2**20 + 1, 2**40]), codec, inner,
                 digests])


# --- the tests --------------------------------------------------------------------------------------------


def test_seeded_mutation_fuzz(corpus, case_dir, tmp_path, report_line):
    rng = random.Random(SEED)
    p = case_dir / "case.ptsnap"
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    outcome_by_how: dict[str, dict[str, int]] = {}
    slowest = 0.0
    t_start = time.perf_counter()
    for case in range(CASES):
        base = rng.choice(corpus)
        how, data = mutate(base, corpus, rng)
        if rng.random() < 0.3:  # stack a second mutation now and then
            how2, data = mutate(data, corpus, rng) if data else (how, data)
            how = f"{how}+{how2}"
        p.write_bytes(data)
        scan = rng.random() < 0.25
        t0 = time.perf_counter()
        try:
            with alarm(CASE_SECONDS):
                result = exercise(p, scan=scan)
        except BaseException as e:
            keep = tmp_path / f"failing-case-{case}.ptsnap"
            keep.write_bytes(data)
            raise AssertionError(f"case {case} ({how}, scan={scan}) raised {type(e).__name__}: {e}; "
                                 f"the file is {keep}") from e
        slowest = max(slowest, time.perf_counter() - t0)
        d = outcome_by_how.setdefault(how.split("+")[0], {})
        d[result] = d.get(result, 0) + 1
        _counts[result] += 1
        _counts["mutation"] += 1
    rss_growth_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
    elapsed = time.perf_counter() - t_start
    report_line(f"snapshot fuzz: {CASES} seeded mutation cases (seed {SEED}) in {elapsed:.1f} s "
                f"(slowest {slowest * 1000:.0f} ms, peak RSS growth {rss_growth_mb:.0f} MB): "
                f"{_counts['loaded']} loaded, {_counts['partial']} partial, {_counts['error']} SnapshotError")
    assert rss_growth_mb < 400  # the 64 MiB zlib bomb is the biggest allocation allowed
    if CASES == 3600 and SEED == 20250131:  # docs/fuzzing.md shows this run's outcome: keep it true
        doc = (Path(__file__).resolve().parents[1] / "docs" / "fuzzing.md").read_text()
        shown = re.search(r"snapshot fuzz: 3600 seeded mutation cases \(seed 20250131\).*?: "
                          r"(\d+) loaded, (\d+) partial, (\d+) SnapshotError", doc)
        assert shown is not None, "docs/fuzzing.md lost its example line"
        got = (_counts["loaded"], _counts["partial"], _counts["error"])
        assert tuple(map(int, shown.groups())) == got, f"docs/fuzzing.md: update the counts to {got}"
    # the structure-aware mutators must get past the CRC and reach the decoders
    for how in ("payload", "structure", "hostile", "kind", "inner"):
        assert sum(outcome_by_how.get(how, {}).values()) > 50


@given(tail=st.binary(max_size=600))
@settings(max_examples=HYPOTHESIS_EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_hypothesis_bytes_after_a_valid_header(corpus, case_dir, tail):
    good = corpus[2]
    head_end = parse(good)[0][0] + FRAME_SIZE + len(parse(good)[0][3])
    p = case_dir / "h.ptsnap"
    p.write_bytes(good[:head_end] + tail)
    with alarm(CASE_SECONDS):
        exercise(p)
        exercise(p, scan=True)
    EXAMPLES.add(examples=1)


@given(data=st.data())
@settings(max_examples=HYPOTHESIS_EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_hypothesis_damaged_corpus_files(corpus, case_dir, data):
    base = bytearray(data.draw(st.sampled_from(corpus)))
    for _ in range(data.draw(st.integers(1, 6))):
        i = data.draw(st.integers(0, len(base) - 1))
        base[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(base)))
    p = case_dir / "d.ptsnap"
    p.write_bytes(bytes(base[:cut]) + data.draw(st.binary(max_size=32)))
    with alarm(CASE_SECONDS):
        exercise(p, scan=data.draw(st.booleans()))
    EXAMPLES.add(examples=1)


@given(obj=st.recursive(st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats()
                        | st.text(max_size=8) | st.binary(max_size=8),
                        lambda c: st.lists(c, max_size=4)
                        | st.dictionaries(st.text(max_size=4), c, max_size=4),
                        max_leaves=20),
       which=st.integers(0, 1000), compress=st.booleans())
@settings(max_examples=HYPOTHESIS_EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_hypothesis_wrong_payloads_with_good_crcs(corpus, case_dir, obj, which, compress):
    good = corpus[0]
    recs = parse(good)
    off, kind, _flags, body = recs[which % len(recs)]
    payload = pack(obj)
    new = frame(kind, 1, zlib.compress(payload)) if compress else frame(kind, 0, payload)
    p = case_dir / "w.ptsnap"
    p.write_bytes(good[:off] + new + good[off + FRAME_SIZE + len(body):])
    with alarm(CASE_SECONDS):
        exercise(p)
        exercise(p, scan=True)
    EXAMPLES.add(examples=1)


def test_zlib_bombs_stop_at_the_limits(corpus, case_dir):
    """A zlib stream that inflates to 64 MiB + 1, in place of every record of a file, and inside an
    op batch's own compressed part: refused at each kind's limit, with bounded memory."""
    good = corpus[0]
    p = case_dir / "bomb.ptsnap"
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    outcomes = set()
    seen_kinds = set()
    for off, kind, _flags, body in parse(good):
        if kind in seen_kinds:
            continue
        seen_kinds.add(kind)
        end = off + FRAME_SIZE + len(body)
        variants = [frame(kind, 1, _BOMB)]
        if kind == Kind.OPS:
            outer = msgpack.unpackb(body, raw=False)
            outer[2], outer[3] = 1, _BOMB
            variants.append(frame(kind, 0, pack(outer)))
        for v in variants:
            p.write_bytes(good[:off] + v + good[end:])
            with alarm(CASE_SECONDS):
                outcomes.add(exercise(p))
                outcomes.add(exercise(p, scan=True))
    assert seen_kinds >= {Kind.HEADER, Kind.OPS, Kind.CHECKPOINT, Kind.BLOB, Kind.INDEX, Kind.COMMIT}
    assert outcomes <= {"error", "partial", "loaded"}
    assert (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024 < 400
