# SPDX-License-Identifier: GPL-2.0-only
"""The ``.ptsnap`` framing: preamble, record frames, record kinds and the reader's limits.

``docs/snapshot-format.md`` §1 (layout, record kinds) and §7 (limits) are
the specification; this module is their executable half. Layout::

    file     := preamble record*
    preamble := magic(8) | u16 format_version | u16 flags(=0) | u32 crc32(previous 12 bytes)
    record   := u32 length | u8 kind | u8 flags | u32 crc32(length, kind, flags, body) | body
    body     := payload, zlib-compressed when flags & FLAG_ZLIB

All integers are little-endian. Payloads are msgpack (:mod:`snapshots.codec`),
except the commit record whose body is two u64 (see :data:`COMMIT_BODY`).
The framing never changes between format versions; payload schemas do
(:mod:`snapshots.op_batches`, :mod:`snapshots.blobs`, :mod:`snapshots.header`),
and old payloads are brought up to date by :mod:`snapshots.migrate`.
Decompression is bounded: nothing inflates past its kind's limit.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from enum import IntEnum

from snapshots.errors import RecordError

MAGIC = b"\x89PTSNAP\n"
FORMAT_VERSION = 3  # written by this ptlab
OLDEST_VERSION = 1  # oldest this ptlab can read (through snapshots.migrate)

PREAMBLE = struct.Struct("<8sHHI")
PREAMBLE_SIZE = PREAMBLE.size  # 16
FRAME = struct.Struct("<IBBI")  # length, kind, flags, crc32
FRAME_SIZE = FRAME.size  # 10
_FRAME_PREFIX = struct.Struct("<IBB")  # the part of the frame head the CRC covers
COMMIT_BODY = struct.Struct("<QQ")  # ops committed, offset of the index record (0: none)
COMMIT_RECORD_SIZE = FRAME_SIZE + COMMIT_BODY.size

FLAG_ZLIB = 0x01
KNOWN_FLAGS = FLAG_ZLIB


class Kind(IntEnum):
    """Record kinds. Readers skip kinds they do not know (after checking the CRC)."""

    HEADER = 1  # the session header; always the first record
    OPS = 2  # a batch of consecutive op records
    CHECKPOINT = 3  # the state after N ops, big bytes values replaced by blob refs
    BLOB = 4  # one big bytes value (a packed page table), stored once per content
    INDEX = 5  # where the op batches, checkpoints and blobs are (written at close)
    COMMIT = 6  # everything before this record is durable


def kind_name(kind: int) -> str:
    try:
        return Kind(kind).name.lower()
    except ValueError:
        return f"kind {kind}"


MiB = 1 << 20


@dataclass(frozen=True)
class Limits:
    """Upper bounds the reader enforces before allocating anything.

    ``max_record`` bounds a record's stored size; the ``max_*`` of each kind
    bound its *decompressed* payload; ``max_checkpoint_total`` bounds one
    checkpoint together with all the blobs it refers to, each counted at every
    reference (the *expanded* size: a blob shared by N tables counts N times,
    as the engine makes N tables of it). ``max_depth`` is the
    deepest nesting of lists/maps accepted anywhere. The writer applies the
    same limits (it splits op batches, and refuses a checkpoint or header that
    is too big), so it never writes a file the reader would reject.

    Memory: reading one record needs its stored size, plus its payload size,
    plus the decoded objects. msgpack makes at most one object per payload
    byte, and Python objects are bigger than their encoding: up to ~20x for
    a hostile payload of tiny lists or short strings, ~40x for an op table
    whose one-byte values each become a map entry. Hence the modest limits
    for everything but blobs (plain bytes, decoded 1:1); pass smaller ones
    to open files from sources you do not trust.
    """

    max_record: int = 256 * MiB
    max_header: int = 4 * MiB
    max_ops: int = 8 * MiB
    max_checkpoint: int = 64 * MiB
    max_blob: int = 256 * MiB
    max_index: int = 16 * MiB
    max_checkpoint_total: int = 1024 * MiB
    max_depth: int = 32

    def for_kind(self, kind: int) -> int:
        limits: dict[int, int] = {
            Kind.HEADER: self.max_header,
            Kind.OPS: self.max_ops,
            Kind.CHECKPOINT: self.max_checkpoint,
            Kind.BLOB: self.max_blob,
            Kind.INDEX: self.max_index,
            Kind.COMMIT: COMMIT_BODY.size,
        }
        return limits.get(kind, self.max_record)


DEFAULT_LIMITS = Limits()


# --- preamble and frames --------------------------------------------------------------------------


def encode_preamble(version: int = FORMAT_VERSION, flags: int = 0) -> bytes:
    head = MAGIC + struct.pack("<HH", version, flags)
    return head + struct.pack("<I", zlib.crc32(head))


def decode_preamble(data: bytes) -> tuple[int, int, bool]:
    """-> (version, flags, crc_ok). The caller has already checked the magic."""
    magic, version, flags, crc = PREAMBLE.unpack(data)
    return version, flags, zlib.crc32(data[:12]) == crc


def frame_crc(length: int, kind: int, flags: int, body: bytes | memoryview) -> int:
    return zlib.crc32(body, zlib.crc32(_FRAME_PREFIX.pack(length, kind, flags)))


def encode_frame(kind: int, payload: bytes, level: int = 0) -> bytes:
    """One record. ``level`` 1-9 compresses with zlib when that makes it smaller."""
    flags = 0
    body = payload
    if level and len(payload) >= 64:
        z = zlib.compress(payload, level)
        if len(z) < len(payload):
            body, flags = z, FLAG_ZLIB
    n = len(body)
    return FRAME.pack(n, kind, flags, frame_crc(n, kind, flags, body)) + body


def decompress(flags: int, body: bytes, limit: int) -> bytes:
    """The payload of a record body, refusing to inflate past ``limit`` bytes."""
    if not flags & FLAG_ZLIB:
        if len(body) > limit:
            raise RecordError(f"payload of {len(body)} bytes exceeds the limit of {limit}")
        return body
    d = zlib.decompressobj()
    try:
        out = d.decompress(body, limit + 1)
    except zlib.error as e:
        raise RecordError(f"bad compressed data ({e})") from None
    if len(out) > limit:
        raise RecordError(f"payload inflates past the limit of {limit} bytes")
    if d.unconsumed_tail or not d.eof:
        raise RecordError("compressed data is incomplete")
    if d.unused_data:
        raise RecordError("junk after the compressed data")
    return out


def decompress_prefix(flags: int, body: bytes, n: int = 64) -> bytes:
    """At most the first ``n`` bytes of the payload (cheap, for scanning)."""
    if not flags & FLAG_ZLIB:
        return body[:n]
    try:
        return zlib.decompressobj().decompress(body, n)
    except zlib.error as e:
        raise RecordError(f"bad compressed data ({e})") from None
