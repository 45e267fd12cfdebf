# SPDX-License-Identifier: GPL-2.0-only
"""The op batch schema (record kind 2): a batch of consecutive ops, in columns.

``docs/snapshot-format.md`` §3 is the specification. :func:`encode_ops` and
:func:`decode_ops` turn ``(op, counters, digest)`` records into the op batch
*payload* and back (every format version decodes to that payload, so the
reader and the migration chain see one layout); :func:`encode_ops_body` and
:func:`decode_ops_body` turn the payload into the v3 record *body* (the ops
as a table, compressed by itself, digests outside) and back.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from itertools import chain, repeat
from typing import Any, NamedTuple

from snapshots.codec import DICT, SCALARS, STR, check_plain, pack, unpack
from snapshots.errors import RecordError
from snapshots.framing import DEFAULT_LIMITS, FLAG_ZLIB, Limits, decompress


class OpRecord(NamedTuple):
    """One recorded op.

    ``number`` is the op's position (0-based): applying ops ``0..number`` to the
    initial state gives the state whose digest is ``digest``.
    """

    number: int
    op: dict[str, Any]  # the op as plain data (engine.ops.Op.to_plain())
    counters: dict[str, int | float]  # the op's cost counters
    digest: str | bytes  # the state digest after the op


# --- op batch payloads ----------------------------------------------------------------------------
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
        if not set(map(type, col)) <= DICT and not all(isinstance(c, dict) for c in col):
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


_DIGEST_TYPES = frozenset({str, bytes})


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
    if set(map(type, digests)) <= _DIGEST_TYPES:  # the usual case, checked at C speed
        return list(digests)
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
        if type(ks) is not list or not set(map(type, ks)) <= STR or len(set(ks)) != len(ks):
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
    ids = list(map(id, dicts))
    distinct = dict(zip(ids, dicts, strict=True))  # in first-use order; the caller holds the dicts
    if 4 * len(distinct) > len(dicts):
        return _keysets_of(dicts)
    # a session's records share their counter dicts: the work is per distinct dict, then a
    # lookup per op (first uses of key lists come in the same order among the distinct dicts)
    keysets, index = _keysets_of(list(distinct.values()))
    if index is None:
        return keysets, None
    return keysets, list(map(dict(zip(distinct, index, strict=True)).__getitem__, ids))


def _keysets_of(dicts: Sequence[dict[str, Any]]) -> tuple[list[list[str]], list[int] | None]:
    keys = list(map(tuple, dicts))
    k0 = keys[0]
    if keys.count(k0) == len(keys):
        keysets, key_index = [list(k0)], None
    else:
        seen: dict[tuple[str, ...], int] = {}
        key_index = [seen.setdefault(k, len(seen)) for k in keys]
        keysets = [list(k) for k in seen]
    if not set(map(type, chain.from_iterable(keysets))) <= STR and \
            not all(isinstance(k, str) for k in chain.from_iterable(keysets)):  # str subclasses are fine
        raise ValueError("a map key is not a string")
    return keysets, key_index


# --- op batch bodies (format v3) ------------------------------------------------------------------
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
    if set(map(type, ops)) == DICT:
        shapes = list(map(tuple, ops))
        k0 = shapes[0]
        if shapes.count(k0) == len(shapes) and set(map(type, k0)) <= STR:
            columns: list[Any] = []
            for col in zip(*map(dict.values, ops), strict=True):
                ct = set(map(type, col))
                if ct <= SCALARS:
                    columns.append([0, list(col)])
                elif ct == DICT:
                    keysets, key_index = _keysets(col)
                    flat = list(chain.from_iterable(map(dict.values, col)))
                    if not set(map(type, flat)) <= SCALARS:
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
    if type(keys) is not list or not set(map(type, keys)) <= STR or len(set(keys)) != len(keys) \
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
