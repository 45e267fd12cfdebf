# SPDX-License-Identifier: GPL-2.0-only
"""``python -m snapshots FILE...``: what is in a ``.ptsnap`` file, record by record.

A debugging aid for the container (the user-facing commands are ``ptlab
show/replay/diff``). Prints the header, one line per record (offset, kind,
flags, length, CRC, and what the record holds) and what ``open_snapshot``
makes of the file. Exit status 0, or 2 if a file cannot be opened.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TextIO

from snapshots.codec import peek_ints
from snapshots.errors import RecordError, SnapshotError
from snapshots.framing import (
    COMMIT_BODY,
    FRAME,
    FRAME_SIZE,
    PREAMBLE_SIZE,
    Kind,
    decompress_prefix,
    frame_crc,
    kind_name,
)
from snapshots.migrate import peek_op_batch
from snapshots.reader import open_snapshot


def describe(kind: int, flags: int, body: bytes, version: int) -> str:
    try:
        if kind == Kind.COMMIT and len(body) == COMMIT_BODY.size:
            ops, index_at = COMMIT_BODY.unpack(body)
            return f"{ops} ops" + (f", final (index at {index_at:#x})" if index_at else "")
        if kind == Kind.OPS:
            first, count = peek_op_batch(decompress_prefix(flags, body), version)
            return f"ops {first}-{first + count - 1}"
        if kind == Kind.CHECKPOINT:
            return f"state after op {peek_ints(decompress_prefix(flags, body), 1)[0]}"
        if kind == Kind.BLOB:
            return f"blob {peek_ints(decompress_prefix(flags, body), 1)[0]}"
    except RecordError as e:
        return f"({e})"
    return ""


def dump(path: str, out: TextIO = sys.stdout) -> int:
    try:
        with open_snapshot(path) as snap:
            print(f"{path}: format v{snap.format_version}, {snap.op_count} ops, "
                  f"{len(snap.checkpoints)} checkpoints{', truncated' if snap.truncated else ''}", file=out)
            for k, v in snap.header.to_plain().items():
                print(f"  {k}: {v!r}"[:200], file=out)
            for w in snap.warnings:
                print(f"  warning: {w}", file=out)
    except SnapshotError as e:
        print(e, file=sys.stderr)
        status = 2
    else:
        status = 0
    data = b""
    if os.path.isfile(path):  # not a FIFO or device: those would block or never end
        with open(path, "rb") as f:
            data = f.read()
    version = int.from_bytes(data[8:10], "little") if len(data) >= 10 else 0
    pos = PREAMBLE_SIZE
    n = 0
    while pos + FRAME_SIZE <= len(data):
        length, kind, flags, crc = FRAME.unpack_from(data, pos)
        body = data[pos + FRAME_SIZE:pos + FRAME_SIZE + length]
        if len(body) < length:
            print(f"  {pos:#010x}  #{n:<5} {kind_name(kind):10} {length} bytes: runs past the end", file=out)
            break
        ok = "ok " if frame_crc(length, kind, flags, body) == crc else "BAD"
        print(f"  {pos:#010x}  #{n:<5} {kind_name(kind):10} flags {flags:#04x} {length:>9} bytes  crc {ok}  "
              f"{describe(kind, flags, body, version) if ok == 'ok ' else ''}", file=out)
        pos += FRAME_SIZE + length
        n += 1
    if pos < len(data):
        print(f"  {pos:#010x}  {len(data) - pos} bytes that are not a whole record", file=out)
    return status


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m snapshots", description=__doc__.split("\n\n")[0])
    p.add_argument("files", nargs="+", metavar="FILE")
    args = p.parse_args(argv)
    status = 0
    for path in args.files:
        try:
            status = max(status, dump(path))
        except OSError as e:
            print(f"{path}: {e.strerror or e}", file=sys.stderr)
            status = 2
    return status


if __name__ == "__main__":
    sys.exit(main())
