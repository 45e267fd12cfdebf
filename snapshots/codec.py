# SPDX-License-Identifier: GPL-2.0-only
"""The ``.ptsnap`` payload codec: strict msgpack, and the plain-data check.

``docs/snapshot-format.md`` §1 (payloads) and §7 (strictness) are the
specification. Nothing here uses pickle or eval. Decoding is strict: every
length is bounded before anything is allocated (from the payload's own
size), msgpack ext types (including timestamps) are refused, map keys must
be strings and nesting depth is bounded. Writing applies the same check, so
the writer never stores what the reader would refuse.
"""

from __future__ import annotations

from itertools import chain, compress
from typing import Any

import msgpack

from snapshots.errors import RecordError

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


# --- plain data -----------------------------------------------------------------------------------
# Type sets: `set(map(type, values)) <= SCALARS` checks a whole level of values at C speed.

SCALARS = frozenset({type(None), bool, int, float, str, bytes})
STR = frozenset({str})
DICT = frozenset({dict})
BYTES = frozenset({bytes})
LIST = frozenset({list, tuple})
_CONTAINERS = DICT | LIST
PLAIN = SCALARS | _CONTAINERS


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
        if types <= SCALARS:
            return
        if not types <= PLAIN or (not lenient and tuple in types):
            break
        depth += 1
        if depth > max_depth:
            break
        if types == DICT:
            dicts, lists = level, []
        else:
            dicts = list(compress(level, map(DICT.__contains__, tl))) if dict in types else []
            lists = list(compress(level, map(LIST.__contains__, tl))) if types & LIST else []
        # the distinct keys first (str hashes are cached), then their types
        if dicts and not set(map(type, set(chain.from_iterable(dicts)))) <= STR:
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
    elif t in SCALARS or (lenient and isinstance(obj, (bool, int, float, str, bytes))):
        return
    else:
        raise err(f"{where or 'value'} has a value of type {t.__name__}, which is not plain data")
    for k, v in items:
        if type(v) not in SCALARS:
            _check(v, depth_left - 1, lenient, err, f"{where}[{k!r}]" if where else f"[{k!r}]")


def _short(v: Any) -> str:
    r = repr(v)
    return r if len(r) <= 40 else r[:37] + "..."
