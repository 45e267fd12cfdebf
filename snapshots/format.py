# SPDX-License-Identifier: GPL-2.0-only
"""The ``.ptsnap`` container: constants, framing and the strict msgpack codec.

``docs/snapshot-format.md`` is the specification; this module is its
executable half. Layout::

    file     := preamble record*
    preamble := magic(8) | u16 format_version | u16 flags(=0) | u32 crc32(previous 12 bytes)
    record   := u32 length | u8 kind | u8 flags | u32 crc32(length, kind, flags, body) | body
    body     := payload, zlib-compressed when flags & FLAG_ZLIB

All integers are little-endian. Payloads are msgpack, except the commit
record whose body is two u64 (see :data:`COMMIT_BODY`). The framing never
changes between format versions; payload schemas do, and old payloads are
brought up to date by :mod:`snapshots.migrate`.

Nothing here uses pickle or eval. Decoding is strict: every length is bounded
before anything is allocated, msgpack ext types (including timestamps) are
refused, map keys must be strings and nesting depth is bounded.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from itertools import chain, compress, repeat
from typing import Any, NamedTuple

import msgpack

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


class RecordError(ValueError):
    """A payload is malformed; the reader adds the file name and record position."""


# --- records seen by callers -----------------------------------------------------------


class OpRecord(NamedTuple):
    """One recorded op.

    ``number`` is the op's position (0-based): applying ops ``0..number`` to the
    initial state gives the state whose digest is ``digest``.
    """

    number: int
    op: dict[str, Any]  # the op as plain data (engine.ops.Op.to_plain())
    counters: dict[str, int | float]  # the op's cost counters
    digest: str | bytes  # the state digest after the op


class Checkpoint(NamedTuple):
    """The state after the first ``op_number`` ops (plain data as the caller gave it)."""

    op_number: int
    state: Any


# --- preamble and frames ---------------------------------------------------------------


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


# --- msgpack -----------------------------------------------------------------------------

_packer_options = {"use_bin_type": True, "strict_types": False, "datetime": False}


def pack(obj: Any) -> bytes:
    """msgpack bytes of plain data (bin for bytes, str for str, arrays for lists/tuples)."""
    try:
        packed: bytes = msgpack.packb(obj, **_packer_options)  # (msgpack publishes no types)
        return packed
    except (TypeError, ValueError, OverflowError) as e:
        raise ValueError(f"cannot store value: {e}") from None


def _refuse_ext(code: int, data: bytes) -> Any:
    raise RecordError(f"msgpack ext type {code} is not allowed")


def unpack(data: bytes, max_depth: int, check: bool = True) -> Any:
    """Decode one msgpack object that must fill ``data`` exactly; plain types only.

    Unpacker limits are all set from ``len(data)`` (so nothing decoded can be
    bigger than the bytes it came from), ext types are refused outright and
    the result is checked by :func:`check_plain` (types, string keys, depth)
    unless ``check`` is false (for payloads whose decoder checks every part
    itself, like :func:`decode_ops`).
    """
    n = len(data)
    if n == 0:
        raise RecordError("empty payload")
    u = msgpack.Unpacker(
        max_buffer_size=n,
        max_bin_len=n,
        max_str_len=n,
        max_array_len=n,
        max_map_len=n // 2,
        max_ext_len=0,
        ext_hook=_refuse_ext,
        raw=False,
        strict_map_key=True,
        use_list=True,
        timestamp=0,
    )
    try:
        u.feed(data)
        obj = u.unpack()
    except RecordError:
        raise
    except msgpack.OutOfData:
        raise RecordError("msgpack data ends early") from None
    except msgpack.StackError:
        raise RecordError("msgpack data nests too deeply") from None
    except UnicodeDecodeError:
        raise RecordError("a string is not valid UTF-8") from None
    except (ValueError, TypeError, OverflowError, msgpack.UnpackException) as e:
        raise RecordError(f"bad msgpack data ({type(e).__name__}: {e})") from None
    if u.tell() != n:
        raise RecordError(f"{n - u.tell()} bytes of junk after the msgpack data")
    if check:
        check_plain(obj, max_depth)
    return obj


def peek_ints(prefix: bytes, count: int) -> list[int]:
    """The first ``count`` elements of a msgpack array at the start of ``prefix``; ints."""
    u = msgpack.Unpacker(max_buffer_size=max(len(prefix), 1), max_ext_len=0, ext_hook=_refuse_ext,
                         max_bin_len=0, max_str_len=0, max_array_len=1 << 20, max_map_len=0)
    try:
        u.feed(prefix)
        if u.read_array_header() < count:
            raise RecordError("payload array is too short")
        out = [u.unpack() for _ in range(count)]
    except RecordError:
        raise
    except Exception as e:  # noqa: BLE001 - any failure here means a malformed payload
        raise RecordError(f"bad payload start ({type(e).__name__})") from None
    for v in out:
        if type(v) is not int or v < 0:
            raise RecordError("payload does not start with counts")
    return out


# --- plain data ------------------------------------------------------------------------------

_SCALARS = frozenset({type(None), bool, int, float, str, bytes})
_STR = frozenset({str})
_DICT = frozenset({dict})
_BYTES = frozenset({bytes})
_LIST = frozenset({list, tuple})
_CONTAINERS = _DICT | _LIST
_PLAIN = _SCALARS | _CONTAINERS


def check_plain(obj: Any, max_depth: int, *, lenient: bool = False, where: str = "") -> None:
    """Raise ValueError (RecordError when decoding) unless ``obj`` is plain data.

    Plain data: None, bool, int, float, str, bytes, lists and maps with str
    keys, nested at most ``max_depth`` containers deep. ``lenient`` (used on
    the writing side) also accepts tuples and subclasses of these types (an
    IntEnum, a Counter), which are stored as their base types.

    The check goes one nesting level at a time over all containers of that
    level at once (C-speed ``map``/``chain``/``compress``), so checking a
    batch of a thousand ops costs about as much as packing it; only when
    something is wrong (or, when lenient, unusual) does it walk the value
    recursively to say where.
    """
    err = ValueError if lenient else RecordError
    level: list[Any] = [obj]
    depth = 0
    while True:
        tl = list(map(type, level))
        types = set(tl)
        if types <= _SCALARS:
            return
        if not types <= _PLAIN or (not lenient and tuple in types):
            break
        depth += 1
        if depth > max_depth:
            break
        if types == _DICT:
            dicts, lists = level, []
        else:
            dicts = list(compress(level, map(_DICT.__contains__, tl))) if dict in types else []
            lists = list(compress(level, map(_LIST.__contains__, tl))) if types & _LIST else []
        # the distinct keys first (str hashes are cached), then their types
        if dicts and not set(map(type, set(chain.from_iterable(dicts)))) <= _STR:
            break
        level = list(chain(chain.from_iterable(map(dict.values, dicts)), chain.from_iterable(lists)))
    _check(obj, max_depth, lenient, err, where)  # slow path: finds and names the problem (or accepts)


def _check(obj: Any, depth_left: int, lenient: bool, err: type[ValueError], where: str) -> None:
    t = type(obj)
    if t is dict or (lenient and isinstance(obj, dict)):
        if depth_left <= 0:
            raise err(f"{where or 'value'} nests too deeply")
        for k in obj:
            if not (type(k) is str or (lenient and isinstance(k, str))):
                raise err(f"{where or 'value'} has a map key that is not a string: {_short(k)}")
        items: Any = obj.items()
    elif t is list or (lenient and isinstance(obj, (list, tuple))):
        if depth_left <= 0:
            raise err(f"{where or 'value'} nests too deeply")
        items = enumerate(obj)
    elif t in _SCALARS or (lenient and isinstance(obj, (bool, int, float, str, bytes))):
        return
    else:
        raise err(f"{where or 'value'} has a value of type {t.__name__}, which is not plain data")
    for k, v in items:
        if type(v) not in _SCALARS:
            _check(v, depth_left - 1, lenient, err, f"{where}[{k!r}]" if where else f"[{k!r}]")


def _short(v: Any) -> str:
    r = repr(v)
    return r if len(r) <= 40 else r[:37] + "..."


# --- op batches --------------------------------------------------------------------------------
#
# payload (format v2 and later):
#   [first, count, ops, keysets, key_index, values, digests]
#   ops        [map] * count                  the ops' plain dicts
#   keysets    [[str, ...], ...]               distinct counter-name lists, in first-use order
#   key_index  nil (every op uses keysets[0]) or [int] * count
#   values     [number, ...]                  all ops' counter values, flat, each op's in the
#                                             order of its keyset
#   digests    bin: count equal slices, each the bytes of a lowercase-hex digest string
#              or [str|bin] * count           the digests as given


def encode_ops(first: int, records: Sequence[tuple[Any, Any, Any]]) -> list[Any]:
    """The payload of an op batch (plain data, ready to pack). Checks counters and digests.

    ``records`` are ``(op, counters, digest)`` tuples; TypeError/ValueError if
    an op or its counters are not dicts, a counter is not a number or a
    digest is neither str nor bytes. The ops themselves are checked by the
    caller (:func:`check_plain`).
    """
    ops, counters, digests = zip(*records, strict=True)
    for col, what in ((ops, "an op"), (counters, "counters")):
        if not set(map(type, col)) <= _DICT and not all(isinstance(c, dict) for c in col):
            raise TypeError(f"{what} must be a dict")
    try:
        keysets, key_index = _keysets(counters)
    except ValueError:
        raise ValueError("counter names must be strings") from None
    values = list(chain.from_iterable(map(dict.values, counters)))
    vt = set(map(type, values))
    if not vt <= {int, float}:
        bad = (vt - {int, float}).pop()
        if not (issubclass(bad, (int, float)) and bad is not bool):
            raise ValueError(f"counter values must be numbers, not {bad.__name__}")
    return [first, len(ops), list(ops), keysets, key_index, values, _encode_digests(digests)]


def _encode_digests(digests: tuple[Any, ...]) -> bytes | list[str | bytes]:  # (checked here)
    lengths = set(map(len, digests))
    if len(lengths) == 1:
        (n,) = lengths
        if n and n % 2 == 0:
            try:
                joined = "".join(digests)
                packed = bytes.fromhex(joined)
            except (TypeError, ValueError):
                pass
            else:
                if packed.hex() == joined:
                    return packed
    for d in digests:
        if not isinstance(d, (str, bytes)):
            raise TypeError(f"a digest must be a str or bytes, not {type(d).__name__}")
    return list(digests)


def decode_ops(payload: Any, expect_first: int | None = None, expect_count: int | None = None,
               max_depth: int = DEFAULT_LIMITS.max_depth) -> list[OpRecord]:
    """Op records from a (current-version) op batch payload; RecordError if malformed.

    Checks every part of the payload, including (with :func:`check_plain`)
    that the ops are plain maps nested no deeper than they may be.
    """
    if type(payload) is not list or len(payload) != 7:
        raise RecordError("an op batch must be a list of 7 fields")
    first, count, ops, keysets, key_index, values, digests = payload
    if type(first) is not int or type(count) is not int or first < 0 or not 0 < count <= MAX_BATCH:
        raise RecordError("bad op numbers in op batch")
    if expect_first is not None and first != expect_first:
        raise RecordError(f"op batch starts at op {first}, expected op {expect_first}")
    if expect_count is not None and count != expect_count:
        raise RecordError(f"op batch holds {count} ops, expected {expect_count}")
    if type(ops) is not list or len(ops) != count or not all(type(o) is dict for o in ops):
        raise RecordError("op batch: ops must be maps, one per op")
    check_plain(ops, max_depth - 1, where="op batch: ops")
    if type(values) is not list or not set(map(type, values)) <= {int, float}:
        raise RecordError("op batch: counter values must be numbers")
    counters = _rows(keysets, key_index, values, count, "counter")
    if type(digests) is bytes:
        if len(digests) % count:
            raise RecordError("op batch: packed digests do not divide evenly")
        w = len(digests) // count
        if w == 0:
            raise RecordError("op batch: empty packed digests")
        hx = digests.hex()
        w2 = 2 * w
        dl: list[str | bytes] = [hx[i:i + w2] for i in range(0, len(hx), w2)]
    elif type(digests) is list and len(digests) == count and set(map(type, digests)) <= {str, bytes}:
        dl = digests
    else:
        raise RecordError("op batch: bad digests")
    return list(map(OpRecord, range(first, first + count), ops, counters, dl))


def _rows(keysets: Any, key_index: Any, values: list[Any], count: int, what: str) -> list[dict[str, Any]]:
    """``count`` dicts from the keysets / key_index / flat values encoding (RecordError if malformed)."""
    if type(keysets) is not list or not keysets:
        raise RecordError(f"op batch: bad {what} names")
    for ks in keysets:
        if type(ks) is not list or not set(map(type, ks)) <= _STR or len(set(ks)) != len(ks):
            raise RecordError(f"op batch: bad {what} names")
    nks = len(keysets)
    if key_index is None:
        ks = keysets[0]
        k = len(ks)
        if nks != 1 or len(values) != k * count:
            raise RecordError(f"op batch: {what} values do not match their names")
        # one dict per op from consecutive k-tuples of values, without a Python-level loop
        return list(map(dict, map(zip, repeat(ks), zip(*[iter(values)] * k, strict=True)))) if k \
            else [{} for _ in range(count)]
    if type(key_index) is not list or len(key_index) != count or not set(map(type, key_index)) <= {int} \
            or not all(0 <= ki < nks for ki in key_index):
        raise RecordError(f"op batch: bad {what} name index")
    if len(values) != sum(len(keysets[ki]) for ki in key_index):
        raise RecordError(f"op batch: {what} values do not match their names")
    rows = []
    at = 0
    for ki in key_index:
        ks = keysets[ki]
        rows.append(dict(zip(ks, values[at:at + len(ks)], strict=True)))
        at += len(ks)
    return rows


def _keysets(dicts: Sequence[dict[str, Any]]) -> tuple[list[list[str]], list[int] | None]:
    """The distinct key lists of ``dicts`` in first-use order, and which one each dict has (None: all
    the first). ValueError if a key is not a string."""
    keys = list(map(tuple, dicts))
    k0 = keys[0]
    if keys.count(k0) == len(keys):
        keysets, key_index = [list(k0)], None
    else:
        seen: dict[tuple[str, ...], int] = {}
        key_index = [seen.setdefault(k, len(seen)) for k in keys]
        keysets = [list(k) for k in seen]
    if not set(map(type, chain.from_iterable(keysets))) <= _STR and \
            not all(isinstance(k, str) for k in chain.from_iterable(keysets)):  # str subclasses are fine
        raise ValueError("a map key is not a string")
    return keysets, key_index


# --- op batch bodies (format v3) --------------------------------------------------------------------
#
# In v3 the record body of an op batch (not compressed at the record level) is
#   [first, count, codec, inner, digests]
#   codec    0: inner is msgpack bytes; 1: inner is a zlib stream of them
#   inner    msgpack of [ops, keysets, key_index, values] (the other fields of the payload above)
#   digests  as in the payload above: outside zlib, which could not shrink them
# and ``ops`` is either
#   [0, [map] * count]                         the op maps as they are, or
#   [1, keys, columns]                         every op has exactly ``keys`` (in that order);
#     column := [0, [value] * count]           plain values, or
#             | [1, keysets, key_index, values]  one map per op, encoded like the counters
# Reading a v3 body gives the payload above, so the rest of the reader (and the migration
# chain) only ever sees one op batch layout.

MAX_BATCH = 1 << 20  # ops per batch, at most
OPS_CODEC_RAW = 0
OPS_CODEC_ZLIB = 1


def encode_ops_body(payload: list[Any], level: int, max_depth: int) -> tuple[bytes, int]:
    """The v3 record body of an op batch payload, and the size of its (uncompressed) inner part.

    Checks the ops exactly as the reader will (as :func:`check_plain` on the
    list of ops with ``max_depth - 1``), mostly column by column at C speed.
    """
    first, count, ops, keysets, key_index, values, digests = payload
    inner = pack([_ops_field(ops, max_depth), keysets, key_index, values])
    size = len(inner)
    codec = OPS_CODEC_RAW
    if level:
        z = zlib.compress(inner, level)
        if len(z) < len(inner):
            inner, codec = z, OPS_CODEC_ZLIB
    return pack([first, count, codec, inner, digests]), size


def _ops_field(ops: list[Any], max_depth: int) -> list[Any]:
    # depths, as check_plain(ops, max_depth - 1) counts them: the list of ops is level 1, an op map
    # level 2, a container in an op level 3, a container in a map in an op (args) level 4
    if set(map(type, ops)) == _DICT:
        shapes = list(map(tuple, ops))
        k0 = shapes[0]
        if shapes.count(k0) == len(shapes) and set(map(type, k0)) <= _STR:
            columns: list[Any] = []
            for col in zip(*map(dict.values, ops), strict=True):
                ct = set(map(type, col))
                if ct <= _SCALARS:
                    columns.append([0, list(col)])
                elif ct == _DICT:
                    keysets, key_index = _keysets(col)
                    flat = list(chain.from_iterable(map(dict.values, col)))
                    if not set(map(type, flat)) <= _SCALARS:
                        check_plain(flat, max_depth - 3, lenient=True)
                    columns.append([1, keysets, key_index, flat])
                else:
                    check_plain(list(col), max_depth - 2, lenient=True)
                    columns.append([0, list(col)])
            return [1, list(k0), columns]
    check_plain(ops, max_depth - 1, lenient=True)
    return [0, ops]


def decode_ops_body(body: Any, limits: Limits) -> list[Any]:
    """The op batch payload (7 fields) from a decoded v3 record body; RecordError if malformed.

    Only the structure is checked here; :func:`decode_ops` then checks the payload as for any version.
    """
    if type(body) is not list or len(body) != 5:
        raise RecordError("an op batch body must be a list of 5 fields")
    first, count, codec, inner, digests = body
    if type(count) is not int or not 0 < count <= MAX_BATCH:
        raise RecordError("bad op count in op batch")
    if type(inner) is not bytes or type(codec) is not int or codec not in (OPS_CODEC_RAW, OPS_CODEC_ZLIB):
        raise RecordError("op batch: bad codec")
    data = decompress(FLAG_ZLIB if codec == OPS_CODEC_ZLIB else 0, inner, limits.max_ops)
    fields = unpack(data, limits.max_depth, check=False)
    if type(fields) is not list or len(fields) != 4:
        raise RecordError("op batch: the inner part must be a list of 4 fields")
    ops_field, keysets, key_index, values = fields
    return [first, count, _expand_ops(ops_field, count), keysets, key_index, values, digests]


def _expand_ops(field: Any, count: int) -> Any:
    if type(field) is not list or not field:
        raise RecordError("op batch: bad ops")
    if field[0] == 0 and type(field[0]) is int and len(field) == 2:
        return field[1]  # decode_ops checks it
    if not (field[0] == 1 and type(field[0]) is int and len(field) == 3):
        raise RecordError("op batch: bad ops")
    keys, columns = field[1], field[2]
    if type(keys) is not list or not set(map(type, keys)) <= _STR or len(set(keys)) != len(keys) \
            or type(columns) is not list or len(columns) != len(keys):
        raise RecordError("op batch: bad op table")
    cols = []
    for c in columns:
        if type(c) is list and len(c) == 2 and c[0] == 0 and type(c[0]) is int:
            vals = c[1]
            if type(vals) is not list or len(vals) != count:
                raise RecordError("op batch: an op table column has the wrong length")
        elif type(c) is list and len(c) == 4 and c[0] == 1 and type(c[0]) is int:
            if type(c[3]) is not list:
                raise RecordError("op batch: bad op table column")
            vals = _rows(c[1], c[2], c[3], count, "op field")
        else:
            raise RecordError("op batch: bad op table column")
        cols.append(vals)
    if not keys:
        return [{} for _ in range(count)]
    return list(map(dict, map(zip, repeat(keys), zip(*cols, strict=True))))


# --- checkpoints -----------------------------------------------------------------------------------
#
# payload (format v3): [op_number, tree, refs]
#   tree  the state as given, with every bytes value of at least BLOB_MIN bytes replaced by nil
#   refs  [[path, blob_number], ...]; path is the list of map keys / list indexes leading to the nil
# blob payload: [blob_number, filter, bin]
#   filter 0: bin is the bytes value
#   filter 1 ("xor64"): bin is the value with each little-endian 64-bit word XORed with the word before
#            it (the first word unchanged); the value's length is a multiple of 8. Neighbouring PTEs
#            differ in a few low pfn bits, so this makes packed page tables ~3x smaller after zlib.

BLOB_MIN = 512
FILTER_NONE = 0
FILTER_XOR64 = 1
XOR64_MAX = 1 << 20  # bigger values are stored unfiltered (the filter works on one big integer)


def xor64_encode(data: bytes) -> bytes:
    """Each 64-bit little-endian word XORed with the previous one (``len(data) % 8 == 0``)."""
    n = len(data)
    x = int.from_bytes(data, "little")
    return ((x ^ (x << 64)) & ((1 << (8 * n)) - 1)).to_bytes(n, "little")


def xor64_decode(data: bytes) -> bytes:
    """Inverse of :func:`xor64_encode`: a prefix XOR over the words, in log2(words) big-int steps."""
    n = len(data)
    bits = 8 * n
    z = int.from_bytes(data, "little")
    shift = 64
    while shift < bits:
        z ^= z << shift
        shift *= 2
    return (z & ((1 << bits) - 1)).to_bytes(n, "little")


def encode_blob(blob_no: int, data: bytes) -> list[Any]:
    """The payload of a blob record (xor64-filtered when the length allows)."""
    if len(data) % 8 == 0 and 0 < len(data) <= XOR64_MAX:
        return [blob_no, FILTER_XOR64, xor64_encode(data)]
    return [blob_no, FILTER_NONE, data]


def decode_blob(payload: Any, blob_no: int) -> bytes:
    """The bytes value stored by blob record ``blob_no`` (RecordError if malformed)."""
    if type(payload) is not list or len(payload) != 3 or payload[0] != blob_no \
            or type(payload[2]) is not bytes:
        raise RecordError(f"blob {blob_no} is malformed")
    filt, data = payload[1], payload[2]
    if filt == FILTER_NONE and type(filt) is int:
        return data
    if filt == FILTER_XOR64 and type(filt) is int:
        if len(data) % 8 or not 0 < len(data) <= XOR64_MAX:
            raise RecordError(f"blob {blob_no} has a bad length for its filter")
        return xor64_decode(data)
    raise RecordError(f"blob {blob_no} uses unknown filter {filt!r}")


def split_blobs(state: Any, max_depth: int,
                blob_min: int = BLOB_MIN) -> tuple[Any, list[list[Any]], list[bytes]]:
    """Validate a checkpoint state and take its big bytes values out.

    Returns ``(tree, paths, blobs)``: ``tree`` is ``state`` with each bytes
    value of ``blob_min`` bytes or more replaced by None (containers with
    none inside are shared, not copied), ``paths[i]`` leads to the i-th hole
    and ``blobs[i]`` is what was there. ValueError if ``state`` is not plain
    data nested at most ``max_depth`` deep.
    """
    check_plain(state, max_depth, lenient=True, where="checkpoint")
    paths: list[list[Any]] = []
    blobs: list[bytes] = []
    tree = _split(state, blob_min, [], paths, blobs)
    return tree, paths, blobs


_SMALL = _SCALARS - _BYTES  # scalars that are never blobs


def _split(obj: Any, blob_min: int, path: list[Any], paths: list[Any], blobs: list[Any]) -> Any:
    """``obj`` with big bytes values taken out; containers without any are returned as they are.

    Looks at the types of the children at C speed, and for a container with
    many children also at the grandchildren, so a list of thousands of small
    lists of ints (a folio table) is shared without visiting each small list
    in Python.
    """
    if isinstance(obj, bytes):
        if len(obj) >= blob_min:
            paths.append(list(path))
            blobs.append(obj if type(obj) is bytes else bytes(obj))
            return None
        return obj
    if isinstance(obj, dict):
        children: Any = obj.values()
    elif isinstance(obj, (list, tuple)):
        children = obj
    else:
        return obj
    tl = list(map(type, children))
    ct = set(tl)
    if ct <= _SMALL:
        return obj
    if ct <= _SCALARS:
        if max(map(len, compress(children, map(_BYTES.__contains__, tl)))) < blob_min:
            return obj
    elif ct <= _PLAIN and bytes not in ct and len(tl) > 16:  # many containers: worth a look ahead
        lists = compress(children, map(_LIST.__contains__, tl))
        dicts = compress(children, map(_DICT.__contains__, tl))
        gt = set(map(type, chain(chain.from_iterable(lists), chain.from_iterable(map(dict.values, dicts)))))
        if gt <= _SMALL:
            return obj
    items = obj.items() if isinstance(obj, dict) else enumerate(obj)
    out = []
    for k, v in items:
        tv = type(v)
        if tv in _SMALL:
            out.append(v)
        elif tv is bytes:
            if len(v) >= blob_min:
                paths.append([*path, k])
                blobs.append(v)
                v = None
            out.append(v)
        else:
            path.append(k)
            out.append(_split(v, blob_min, path, paths, blobs))
            path.pop()
    return dict(zip(obj, out, strict=True)) if isinstance(obj, dict) else out


def join_blobs(tree: Any, refs: Any, fetch: Any, max_depth: int) -> Any:
    """Put blobs back into a decoded checkpoint tree (in place); returns the tree.

    ``fetch(n)`` -> the bytes of blob ``n``. An empty path means the whole
    state is one big bytes value (then the tree is nil and there is one ref).
    """
    if type(refs) is not list:
        raise RecordError("checkpoint: bad blob references")
    for ref in refs:
        if type(ref) is not list or len(ref) != 2:
            raise RecordError("checkpoint: bad blob reference")
        path, blob_no = ref
        if type(path) is not list or len(path) > max_depth or type(blob_no) is not int:
            raise RecordError("checkpoint: bad blob reference")
        if not path:
            if tree is not None or len(refs) != 1:
                raise RecordError("checkpoint: bad reference to a whole-state blob")
            return fetch(blob_no)
        node = tree
        for i, step in enumerate(path):
            if type(node) is dict and type(step) is str:
                if step not in node:
                    raise RecordError("checkpoint: blob reference to a missing key")
            elif type(node) is list and type(step) is int:
                if not 0 <= step < len(node):
                    raise RecordError("checkpoint: blob reference out of range")
            else:
                raise RecordError("checkpoint: blob reference does not fit the state")
            if i == len(path) - 1:
                if node[step] is not None:
                    raise RecordError("checkpoint: blob reference to a filled slot")
                node[step] = fetch(blob_no)
            else:
                node = node[step]
    return tree
