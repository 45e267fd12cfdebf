# SPDX-License-Identifier: GPL-2.0-only
"""Bring payloads of older format versions up to the current one.

One small pure function per step (``STEPS[v]`` turns a version-``v`` payload
into a version-``v+1`` payload) and :func:`migrate` runs the chain, like
mitmproxy's flow converters. A step never mutates its input. The framing
(preamble, record heads, CRCs, the commit and index records) is the same in
every version; only payloads change.

History (``docs/snapshot-format.md`` has the full schemas):

* **v1 → v2**: header fields renamed (``profile`` → ``kernel``,
  ``cpu_profile`` → ``cpu``) and the granule stored by name (``4096`` →
  ``"4K"``); op batches went from one map per op to columns (op maps,
  counter names once per batch, packed digests), which halved their size.
* **v2 → v3**: big bytes values in checkpoints (packed page tables) moved out
  into blob records stored once per content, so consecutive checkpoints share
  unchanged tables; a checkpoint payload gained its list of blob references.

Versions 1 and 2 were development drafts of this format. They stay readable
so that the chain is real code with real tests from the first release on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgpack

from snapshots.codec import peek_ints
from snapshots.errors import RecordError
from snapshots.framing import FORMAT_VERSION, Kind
from snapshots.op_batches import encode_ops

_GRANULE_NAMES = {4096: "4K", 16384: "16K", 65536: "64K"}


def v1_to_v2(kind: int, payload: Any) -> Any:
    """Header renames and granule by name; op batches from rows to columns."""
    if kind == Kind.HEADER:
        if not isinstance(payload, dict):
            raise ValueError("the header is not a map")
        out = {}
        for k, v in payload.items():
            if k == "profile":
                out["kernel"] = v
            elif k == "cpu_profile":
                out["cpu"] = v
            elif k == "granule":
                if type(v) is not int or v not in _GRANULE_NAMES:
                    raise ValueError(f"v1 header granule must be 4096, 16384 or 65536, not {v!r}")
                out["granule"] = _GRANULE_NAMES[v]
            else:
                out[k] = v
        return out
    if kind == Kind.OPS:
        if type(payload) is not list or len(payload) != 2:
            raise ValueError("a v1 op batch must be [first, records]")
        first, rows = payload
        if type(first) is not int or first < 0 or type(rows) is not list or not rows:
            raise ValueError("bad v1 op batch")
        records = []
        for r in rows:
            if type(r) is not dict or type(r.get("op")) is not dict or type(r.get("counters")) is not dict:
                raise ValueError("a v1 op record must map op and counters to maps")
            if not isinstance(r.get("digest"), (str, bytes)):
                raise ValueError("a v1 op record needs a digest")
            records.append((r["op"], r["counters"], r["digest"]))
        return encode_ops(first, records)
    return payload


def v2_to_v3(kind: int, payload: Any) -> Any:
    """Checkpoints gain a (here: empty) list of blob references."""
    if kind == Kind.CHECKPOINT:
        if type(payload) is not list or len(payload) != 2:
            raise ValueError("a v2 checkpoint must be [op_number, state]")
        return [payload[0], payload[1], []]
    return payload


STEPS: dict[int, Callable[[int, Any], Any]] = {1: v1_to_v2, 2: v2_to_v3}


def migrate(kind: int, payload: Any, version: int) -> Any:
    """A version-``version`` payload of record ``kind``, as the current version has it."""
    while version < FORMAT_VERSION:
        try:
            payload = STEPS[version](kind, payload)
        except (ValueError, TypeError, KeyError, IndexError) as e:
            raise RecordError(f"cannot bring it from format v{version} to v{version + 1}: {e}") from None
        version += 1
    return payload


def peek_op_batch(prefix: bytes, version: int) -> tuple[int, int]:
    """(first op, number of ops) from the first bytes of an op batch payload."""
    if version >= 2:
        first, count = peek_ints(prefix, 2)
    else:
        (first,) = peek_ints(prefix, 1)
        u = msgpack.Unpacker(max_buffer_size=max(len(prefix), 1), max_ext_len=0, max_bin_len=0,
                             max_str_len=0, max_map_len=0, max_array_len=1 << 20)
        try:
            u.feed(prefix)
            u.read_array_header()
            u.skip()
            count = u.read_array_header()
        except Exception as e:  # noqa: BLE001 - any failure here means a malformed payload
            raise RecordError(f"bad v1 op batch start ({type(e).__name__})") from None
    if count <= 0:
        raise RecordError("an op batch holds no ops")
    return first, count
