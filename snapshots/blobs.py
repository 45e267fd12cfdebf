# SPDX-License-Identifier: GPL-2.0-only
"""Checkpoints (record kind 3) and blobs (record kind 4): big bytes values stored once, filtered.

``docs/snapshot-format.md`` §4 is the specification. A checkpoint's state is
stored as a tree with every big bytes value (a packed page table) taken out
(:func:`split_blobs`) and a list of references to blob records, each value
stored once per content and xor64-filtered so that zlib shrinks it well;
:func:`join_blobs` puts them back when reading.
"""

from __future__ import annotations

from itertools import chain, compress
from typing import Any, NamedTuple

from snapshots.codec import BYTES, DICT, LIST, PLAIN, SCALARS, check_plain
from snapshots.errors import RecordError


class Checkpoint(NamedTuple):
    """The state after the first ``op_number`` ops (plain data as the caller gave it)."""

    op_number: int
    state: Any


# --- checkpoints ----------------------------------------------------------------------------------
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


_SMALL = SCALARS - BYTES  # scalars that are never blobs


def _split(obj: Any, blob_min: int, path: list[Any], paths: list[Any], blobs: list[Any]) -> Any:
    """``obj`` with big bytes values taken out; containers without any are returned as they are.

    Looks at the types of the children at C speed, and for a container of
    more than 16 children at every level below (:func:`_big_bytes_below`), so
    a list of thousands of small lists of ints (a folio table, a TLB's sets)
    is shared without visiting each small list in Python. A container of few
    children is not looked through: each child does its own look, and the
    top of a state, which nearly always holds blobs, is not walked twice.
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
    if ct <= SCALARS:
        if max(map(len, compress(children, map(BYTES.__contains__, tl)))) < blob_min:
            return obj
    elif ct <= PLAIN and len(tl) > 16 and not _big_bytes_below(children, tl, blob_min):
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


def _big_bytes_below(level: Any, tl: list[type], blob_min: int) -> bool:
    """Whether ``level`` (values of the types ``tl``) holds a bytes value of ``blob_min`` bytes or
    more at any depth, or something other than exact plain types (which :func:`_split` then walks).

    Looks one whole nesting level at a time at C speed, as ``check_plain`` does: a container
    of many small containers (a TLB's sets of [tag, entry] pairs) is then shared in one call
    instead of one Python call per small container.
    """
    while True:
        ct = set(tl)
        if not ct <= PLAIN:
            return True
        if bytes in ct and max(map(len, compress(level, map(BYTES.__contains__, tl)))) >= blob_min:
            return True
        if ct <= SCALARS:
            return False
        level = list(chain(chain.from_iterable(map(dict.values, compress(level, map(DICT.__contains__, tl)))),
                           chain.from_iterable(compress(level, map(LIST.__contains__, tl)))))
        tl = list(map(type, level))


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
