# SPDX-License-Identifier: GPL-2.0-only
"""Determinism: the same run twice gives the same events and the same file.

Two subprocesses run the same scenarios through ``ptlab run --save --json``
(and a Session, for the events), one with ``PYTHONHASHSEED=1``, ``TZ=UTC``
and ``SOURCE_DATE_EPOCH`` pinned, the other with another hash seed, a
far-away time zone and the clock. Everything must agree: the JSON output,
every op's digest, a hash over every event of every op, and the .ptsnap
files byte for byte -- except the header's ``created`` field (20 bytes, UTC,
fixed width) and, since it covers those bytes, the header record's CRC. The
header record is never compressed, so ``created`` moves no other byte (a
compressed header changed length with the time and shifted the whole file).

The audit behind it (engine/, snapshots/, tui/): randomness comes only from
``random.Random(seed)`` held by the machine (allocator ageing included); the
clock is read for ``created``, the runaway-policy time limit and run-time
statistics, none of which reach the events, the digests or any record but
``created``; sets are used for membership, never iterated into output (those
that are iterated hold ints, whose order does not depend on the hash seed),
``id()`` only keys lookups, and directory listings are sorted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from snapshots.framing import FRAME, FRAME_SIZE, PREAMBLE, frame_crc
from snapshots.reader import open_snapshot

ROOT = Path(__file__).resolve().parent.parent

# a fork-heavy mix with exits, the mTHP CoW cases, file faults on 64K pages, the periodic scanner
CASES = [("kbuild", []), ("cow-mthp", []), ("page-fault3", ["--granule", "64K"]),
         ("demo", ["--policy", "scan"])]

DRIVER = r"""
import contextlib, hashlib, io, json, sys
from tui.cli import main
from engine.session import Position
from engine.machine_kinds import reopen
from tui.targets import open_target
out = []
for i, (name, opts) in enumerate(json.loads(sys.argv[1])):
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = main(["run", name, *opts, "--save", f"case{i}.ptsnap", "--json"])
    s = open_target(name)
    if opts:
        s = reopen(s, **{opts[0].lstrip("-"): opts[1]})
    s.run()
    h = hashlib.sha256()
    for k in range(0, s.n_ops, 1 if s.n_ops <= 60 else 3):  # (kbuild: every third op, 100k events)
        s.seek(Position(k))  # (events_of puts the session back where it was)
        for ev in s.events_of(k):
            h.update(repr(ev).encode())
    out.append({"rc": rc, "json": buf.getvalue(), "digests": [r.digest.hex() for r in s.records],
                "events": h.hexdigest(), "totals": sorted(s.totals().items())})
print(json.dumps(out))
"""


def _start(tmp: Path, env: dict[str, str]) -> subprocess.Popen:
    tmp.mkdir()
    base = {k: v for k, v in os.environ.items() if k not in ("SOURCE_DATE_EPOCH", "PYTHONHASHSEED", "TZ")}
    base["PYTHONPATH"] = os.pathsep.join([str(ROOT), base.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return subprocess.Popen([sys.executable, "-X", "dev", "-c", DRIVER, json.dumps(CASES)], cwd=tmp,
                            env={**base, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _result(p: subprocess.Popen) -> list[dict]:
    out, err = p.communicate(timeout=600)
    assert p.returncode == 0, err
    return json.loads(out)


def _created_span(data: bytes) -> tuple[int, int]:
    """Where the header's ``created`` value lies (the header record follows the preamble)."""
    n, kind, flags, _crc = FRAME.unpack_from(data, PREAMBLE.size)
    assert flags == 0, "the header record must not be compressed"
    payload_at = PREAMBLE.size + FRAME_SIZE
    key = data.index(b"\xa7created\xb4", payload_at, payload_at + n)  # fixstr 'created', fixstr of 20
    return key + 9, key + 29


def _normalised(data: bytes) -> bytes:
    """The file with ``created`` set to a fixed value and the header's CRC made good again."""
    a, b = _created_span(data)
    out = bytearray(data)
    out[a:b] = b"2000-01-01T00:00:00Z"
    n, kind, flags, _crc = FRAME.unpack_from(out, PREAMBLE.size)
    body = bytes(out[PREAMBLE.size + FRAME_SIZE:PREAMBLE.size + FRAME_SIZE + n])
    FRAME.pack_into(out, PREAMBLE.size, n, kind, flags, frame_crc(n, kind, flags, body))
    return bytes(out)


def test_two_runs_agree_byte_for_byte_but_for_the_creation_time(tmp_path, report_line):
    p1 = _start(tmp_path / "one", {"PYTHONHASHSEED": "1", "TZ": "UTC", "SOURCE_DATE_EPOCH": "1700000000"})
    p2 = _start(tmp_path / "two", {"PYTHONHASHSEED": "4242", "TZ": "Pacific/Kiritimati"})
    one, two = _result(p1), _result(p2)
    total = 0
    for i, (case, x, y) in enumerate(zip(CASES, one, two, strict=True)):
        assert x["rc"] == y["rc"] == 0, case
        assert x["json"] == y["json"], case
        assert x["digests"] == y["digests"], case
        assert x["events"] == y["events"], case
        assert x["totals"] == y["totals"], case
        fa = (tmp_path / "one" / f"case{i}.ptsnap").read_bytes()
        fb = (tmp_path / "two" / f"case{i}.ptsnap").read_bytes()
        assert len(fa) == len(fb), case
        a0, a1 = _created_span(fa)
        assert fa[a0:a1] == b"2023-11-14T22:13:20Z" and fb[a0:a1] != fa[a0:a1], case  # the clocks differ
        differ = [j for j in range(len(fa)) if fa[j] != fb[j]]
        crc_at = PREAMBLE.size + FRAME.size - 4
        assert set(differ) <= set(range(a0, a1)) | set(range(crc_at, crc_at + 4)), (case, differ[:10])
        assert _normalised(fa) == _normalised(fb), case
        # and the decoded records agree as well (the reader checks every CRC on the way)
        with open_snapshot(tmp_path / "one" / f"case{i}.ptsnap") as sa, \
                open_snapshot(tmp_path / "two" / f"case{i}.ptsnap") as sb:
            assert sa.header.created != sb.header.created
            assert list(sa.ops) == list(sb.ops) and len(sa.ops) == len(x["digests"]), case
            assert list(sa.checkpoints) == list(sb.checkpoints), case
            assert all(sa.checkpoints[c] == sb.checkpoints[c] for c in sa.checkpoints), case
        total += len(x["digests"])
    report_line(f"determinism: {len(CASES)} runs ({total} ops) under two hash seeds, time zones and clocks: "
                f"same events, digests and JSON; .ptsnap files identical but for the 20-byte created field "
                f"and the header CRC")
