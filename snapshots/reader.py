# SPDX-License-Identifier: GPL-2.0-only
"""Reading ``.ptsnap`` files: :func:`open_snapshot` -> :class:`Snapshot`.

Opening reads the preamble, the header and — for a file whose writer
finished — the final commit and the index at its end; op batches and
checkpoints are read (and their CRCs checked) only when asked for, so a
million-op file opens and seeks to any checkpoint in milliseconds.

A file without a usable final commit (its writer was killed, the disk filled,
the tail is torn or damaged) is scanned from the start instead: every record's
CRC is checked and the snapshot holds everything up to the *last commit before
the first bad record*. ``Snapshot.truncated`` is then True and
``Snapshot.warnings`` says what happened, e.g. ``run.ptsnap: recovered 16000
ops; file truncated after op 16000 (record 40 (ops) at offset 0x3f20 fails
its CRC)``. ``open_snapshot(path, scan=True)`` forces that scan (use it to
salvage a file whose middle is damaged).

Everything that can go wrong is a :class:`~snapshots.errors.SnapshotError`
with a one-line message; reading never raises anything else for any input,
never allocates more than the declared :class:`~snapshots.framing.Limits`, and
never runs code from the file.
"""

from __future__ import annotations

import bisect
import errno
import os
import stat
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

from snapshots.blobs import Checkpoint, decode_blob, join_blobs
from snapshots.codec import peek_ints, unpack
from snapshots.errors import (
    RecordError,
    SnapshotCorruptError,
    SnapshotError,
    SnapshotFormatError,
    SnapshotIOError,
    SnapshotVersionError,
    display_name,
)
from snapshots.framing import (
    COMMIT_BODY,
    COMMIT_RECORD_SIZE,
    DEFAULT_LIMITS,
    FORMAT_VERSION,
    FRAME,
    FRAME_SIZE,
    KNOWN_FLAGS,
    MAGIC,
    OLDEST_VERSION,
    PREAMBLE_SIZE,
    Kind,
    Limits,
    decode_preamble,
    decompress,
    decompress_prefix,
    frame_crc,
    kind_name,
)
from snapshots.header import SnapshotHeader
from snapshots.migrate import migrate, peek_op_batch
from snapshots.op_batches import OpRecord, decode_ops, decode_ops_body

_KINDS = frozenset(int(k) for k in Kind)


class _Problem(Exception):
    """A record cannot be used. ``torn``: the file ends inside it."""

    def __init__(self, message: str, torn: bool = False) -> None:
        super().__init__(message)
        self.torn = torn


@dataclass
class _Layout:
    """Where things are: parallel lists, all ascending."""

    op_count: int = 0
    batch_firsts: list[int] = field(default_factory=list)
    batch_offsets: list[int] = field(default_factory=list)
    checkpoint_ops: list[int] = field(default_factory=list)
    checkpoint_offsets: list[int] = field(default_factory=list)
    blob_offsets: list[int] = field(default_factory=list)


def open_snapshot(path: str | os.PathLike[str], *, scan: bool = False,
                  limits: Limits = DEFAULT_LIMITS) -> Snapshot:
    """Open a ``.ptsnap`` file (see :class:`Snapshot`). Raises SnapshotError (one line)."""
    return Snapshot(path, scan=scan, limits=limits)


class Snapshot:
    """A snapshot file opened for reading.

    * ``header`` — :class:`SnapshotHeader` (migrated to the current format).
    * ``ops`` — a read-only sequence of :class:`OpRecord` (``number, op,
      counters, digest``), decoded batch by batch on access.
    * ``checkpoints`` — a read-only mapping op number -> plain state, decoded
      on access (each access decodes afresh, so the caller may keep or mutate
      the result). ``checkpoint_for(n)`` finds the nearest one at or before n.
    * ``truncated`` / ``warnings`` — whether the file was cut short and what
      was recovered; ``op_count`` — ``len(ops)``; ``format_version`` — the
      version the file was written in.

    Replaying to the state after ``n`` ops::

        with open_snapshot("run.ptsnap") as snap:
            cp = snap.checkpoint_for(n)            # None: no checkpoint at or before n
            machine.restore(machine.state_from_plain(cp.state))
            for rec in snap.ops.iter_range(cp.op_number, n):
                machine.apply(Op.from_plain(rec.op))   # rec.digest: the digest to expect after it

    Records are read lazily, so a damaged record in an otherwise complete
    file raises :class:`SnapshotCorruptError` when it is reached;
    :meth:`verify` reads everything up front.
    """

    def __init__(self, path: str | os.PathLike[str], *, scan: bool = False,
                 limits: Limits = DEFAULT_LIMITS) -> None:
        self.path = os.fspath(path)
        self.name = display_name(path)
        self.limits = limits
        self.warnings: list[str] = []
        self.truncated = False
        self._cache: dict[int, list[OpRecord]] = {}
        self._lock = threading.Lock()
        self._fd = -1
        try:
            # O_NONBLOCK: a FIFO given by mistake must not hang the open; it is refused below
            self._fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
            st = os.fstat(self._fd)
        except OSError as e:
            self.close()
            hint = ""
            if e.errno == errno.ENOENT and os.path.exists(self.path + ".partial"):
                hint = f" (a save that did not finish left {self.name}.partial: open that to recover it)"
            raise SnapshotIOError(f"{self.name}: cannot read: {_reason(e)}{hint}") from None
        try:
            if stat.S_ISDIR(st.st_mode):
                raise SnapshotIOError(f"{self.name}: cannot read: it is a directory")
            if not stat.S_ISREG(st.st_mode):
                raise SnapshotIOError(f"{self.name}: cannot read: not a regular file")
            self.size = st.st_size
            self._read_start()
            layout = None if scan else self._read_footer()
            if layout is None:
                layout = self._scan()
        except BaseException:
            self.close()
            raise
        self._layout = layout
        self.op_count = layout.op_count
        self.ops = OpSequence(self)
        self.checkpoints = CheckpointTable(self)

    # --- public ---------------------------------------------------------------------------------
    def checkpoint_for(self, op_number: int) -> Checkpoint | None:
        """The checkpoint with the largest op number <= ``op_number`` (None if there is none)."""
        if type(op_number) is not int:
            raise TypeError("op_number must be an int")
        i = bisect.bisect_right(self._layout.checkpoint_ops, op_number) - 1
        if i < 0:
            return None
        return Checkpoint(self._layout.checkpoint_ops[i], self._load_checkpoint(i))

    @property
    def checkpoint_numbers(self) -> list[int]:
        """Op numbers that have a checkpoint, ascending."""
        return list(self._layout.checkpoint_ops)

    def verify(self) -> None:
        """Read and check every op batch and checkpoint now; raise SnapshotError at the first problem."""
        for i in range(len(self._layout.batch_firsts)):
            self._load_batch(i)
        for i in range(len(self._layout.checkpoint_ops)):
            self._load_checkpoint(i)

    def close(self) -> None:
        """Close the file (the snapshot cannot read ops or checkpoints after this). Idempotent."""
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)

    def __enter__(self) -> Snapshot:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"<Snapshot {self.name!r} v{self.format_version} ops={self.op_count} "
                f"checkpoints={len(self._layout.checkpoint_ops)}{' truncated' if self.truncated else ''}>")

    # --- low-level reads -------------------------------------------------------------------------
    def _pread(self, offset: int, n: int) -> bytes:
        if self._fd < 0:
            raise SnapshotIOError(f"{self.name}: the snapshot is closed")
        try:
            data = os.pread(self._fd, n, offset)
            while len(data) < n:
                more = os.pread(self._fd, n - len(data), offset + len(data))
                if not more:
                    break
                data += more
        except OSError as e:
            raise SnapshotIOError(f"{self.name}: cannot read: {_reason(e)}") from None
        return data

    def _record(self, offset: int, what: str) -> tuple[int, int, bytes]:
        """(kind, flags, body) of the record at ``offset``; _Problem if unusable."""
        if offset + FRAME_SIZE > self.size:
            raise _Problem(f"the file ends inside {what} at offset {offset:#x}", torn=True)
        head = self._pread(offset, FRAME_SIZE)
        if len(head) < FRAME_SIZE:
            raise _Problem(f"the file ends inside {what} at offset {offset:#x}", torn=True)
        length, kind, flags, crc = FRAME.unpack(head)
        if length > self.limits.max_record:
            raise _Problem(f"{what} at offset {offset:#x} declares {length} bytes, more than the limit "
                           f"of {self.limits.max_record}")
        if offset + FRAME_SIZE + length > self.size:
            raise _Problem(f"{what} at offset {offset:#x} runs past the end of the file", torn=True)
        body = self._pread(offset + FRAME_SIZE, length)
        if len(body) < length:
            raise _Problem(f"the file ends inside {what} at offset {offset:#x}", torn=True)
        if frame_crc(length, kind, flags, body) != crc:
            raise _Problem(f"{what} at offset {offset:#x} fails its CRC")
        return kind, flags, body

    def _payload(self, kind: int, flags: int, body: bytes, limit: int | None = None) -> Any:
        """Decode and migrate a payload (RecordError if malformed)."""
        if flags & ~KNOWN_FLAGS:
            raise RecordError(f"unknown record flags {flags:#x}")
        data = decompress(flags, body, self.limits.for_kind(kind) if limit is None else limit)
        # op batches are checked part by part in decode_ops()
        obj = unpack(data, self.limits.max_depth, check=kind != Kind.OPS)
        if kind == Kind.OPS and self.format_version >= 3:
            obj = decode_ops_body(obj, self.limits)
        return migrate(kind, obj, self.format_version)

    def _expect(self, offset: int, kind: Kind, what: str, limit: int | None = None) -> Any:
        """The decoded payload of the record of ``kind`` at ``offset``, or SnapshotCorruptError."""
        try:
            k, flags, body = self._record(offset, what)
            if k != kind:
                raise _Problem(f"{what} at offset {offset:#x} is a {kind_name(k)} record, "
                               f"not {kind_name(kind)}")
            return self._payload(k, flags, body, limit)
        except _Problem as e:
            raise SnapshotCorruptError(f"{self.name}: {e}") from None
        except RecordError as e:
            raise SnapshotCorruptError(f"{self.name}: {what} at offset {offset:#x}: {e}") from None

    # --- opening ------------------------------------------------------------------------------------
    def _read_start(self) -> None:
        head = self._pread(0, PREAMBLE_SIZE)
        if head[:len(MAGIC)] != MAGIC:
            if not head:
                raise SnapshotFormatError(f"{self.name}: empty file, not a ptlab snapshot")
            if MAGIC.startswith(head):
                raise SnapshotFormatError(f"{self.name}: truncated before its header, nothing to recover")
            raise SnapshotFormatError(f"{self.name}: not a ptlab snapshot (bad magic)")
        if len(head) < PREAMBLE_SIZE:
            raise SnapshotFormatError(f"{self.name}: truncated before its header, nothing to recover")
        version, flags, ok = decode_preamble(head)
        if not ok:
            raise SnapshotFormatError(f"{self.name}: damaged preamble (CRC mismatch)")
        if version > FORMAT_VERSION or flags:
            what = f"format v{version}" if version > FORMAT_VERSION else f"preamble flags {flags:#x}"
            raise SnapshotVersionError(f"{self.name}: made by a newer ptlab ({what}; this ptlab reads format "
                                       f"v{OLDEST_VERSION} to v{FORMAT_VERSION})")
        if version < OLDEST_VERSION:
            raise SnapshotFormatError(f"{self.name}: unknown snapshot format v{version}")
        self.format_version = version
        try:
            kind, rflags, body = self._record(PREAMBLE_SIZE, "the header")
            if kind != Kind.HEADER:
                raise _Problem(f"the first record is a {kind_name(kind)} record, not the header")
            plain = self._payload(kind, rflags, body)
            self.header = SnapshotHeader.from_plain(plain)
        except _Problem as e:
            if e.torn:
                raise SnapshotFormatError(f"{self.name}: truncated inside its header, "
                                          "nothing to recover") from None
            raise SnapshotFormatError(f"{self.name}: unreadable header: {e}") from None
        except (RecordError, ValueError) as e:
            raise SnapshotFormatError(f"{self.name}: unreadable header: {e}") from None
        self._data_start = PREAMBLE_SIZE + FRAME_SIZE + len(body)

    def _read_footer(self) -> _Layout | None:
        """The layout from the final commit and index, or None (then the file is scanned)."""
        end = self.size - COMMIT_RECORD_SIZE
        if end < self._data_start:
            return None
        try:
            kind, flags, body = self._record(end, "the final commit")
        except _Problem:
            return None
        if kind != Kind.COMMIT or flags or len(body) != COMMIT_BODY.size:
            return None
        op_count, index_at = COMMIT_BODY.unpack(body)
        if not index_at:
            return None  # a commit without an index: the writer did not finish
        try:
            if not self._data_start <= index_at <= end - FRAME_SIZE:
                raise _Problem(f"the index offset {index_at:#x} is outside the file")
            kind, flags, body = self._record(index_at, "the index")
            if kind != Kind.INDEX:
                raise _Problem(f"the record at the index offset {index_at:#x} is a {kind_name(kind)} record")
            if index_at + FRAME_SIZE + len(body) != end:
                raise _Problem("the index does not end where the final commit starts")
            return self._check_index(self._payload(kind, flags, body), op_count, index_at)
        except (_Problem, RecordError) as e:
            self.warnings.append(f"{self.name}: its index is unusable ({e}); read the whole file instead")
            return None

    def _check_index(self, index: Any, op_count: int, index_at: int) -> _Layout:
        if type(index) is not dict:
            raise RecordError("the index is not a map")
        if index.get("op_count") != op_count or type(op_count) is not int:
            raise RecordError("the index and the final commit disagree on the number of ops")
        lo, hi = self._data_start, index_at
        batches = _int_list(index.get("batches"), "batches", pairs=True)
        checkpoints = _int_list(index.get("checkpoints"), "checkpoints", pairs=True)
        blobs = _int_list(index.get("blobs"), "blobs")
        lay = _Layout(op_count, batches[0::2], batches[1::2], checkpoints[0::2], checkpoints[1::2], blobs)
        firsts = lay.batch_firsts
        if op_count and (not firsts or firsts[0] != 0 or firsts[-1] >= op_count):
            raise RecordError("the index's op batches do not cover the ops")
        if not op_count and lay.batch_firsts:
            raise RecordError("the index lists op batches but no ops")
        _ascending(lay.batch_firsts, "op batches", strict=True)
        _ascending(lay.checkpoint_ops, "checkpoints", strict=True)
        if lay.checkpoint_ops and (lay.checkpoint_ops[0] < 0 or lay.checkpoint_ops[-1] > op_count):
            raise RecordError("the index lists a checkpoint past the last op")
        for name, offs in (("op batch", lay.batch_offsets), ("checkpoint", lay.checkpoint_offsets),
                           ("blob", lay.blob_offsets)):
            if offs and (min(offs) < lo or max(offs) > hi - FRAME_SIZE):
                raise RecordError(f"the index puts a {name} outside the file")
        _ascending(lay.blob_offsets, "blobs", strict=True)
        # records are written in op order: batches (and checkpoints) sit at increasing offsets,
        # and no two records share one (two index batches at one offset)
        _ascending(lay.batch_offsets, "op batch offsets", strict=True)
        _ascending(lay.checkpoint_offsets, "checkpoint offsets", strict=True)
        if len(set(lay.batch_offsets) | set(lay.checkpoint_offsets) | set(lay.blob_offsets)) != (
                len(lay.batch_offsets) + len(lay.checkpoint_offsets) + len(lay.blob_offsets)):
            raise RecordError("the index puts two records at one offset")
        return lay

    def _scan(self) -> _Layout:
        """Read every record from the start; keep what the last good commit covers."""
        cur = _Layout()
        committed: tuple[int, int, int, int] | None = None  # batches, checkpoints, blobs, ops
        final = False
        stop: str | None = None
        unknown: dict[int, int] = {}
        pos = self._data_start
        rec_no = 1
        version = self.format_version
        while pos < self.size:
            what = f"record {rec_no}"
            try:
                kind, flags, body = self._record(pos, what)
            except _Problem as e:
                stop = str(e)
                break
            try:
                if kind in _KINDS and flags & ~KNOWN_FLAGS:
                    raise RecordError(f"unknown record flags {flags:#x}")
                if kind == Kind.OPS:
                    first, count = peek_op_batch(decompress_prefix(flags, body), version)
                    if first != cur.op_count:
                        raise RecordError(f"op batch starts at op {first}, expected op {cur.op_count}")
                    cur.batch_firsts.append(first)
                    cur.batch_offsets.append(pos)
                    cur.op_count += count
                elif kind == Kind.CHECKPOINT:
                    (n,) = peek_ints(decompress_prefix(flags, body), 1)
                    last = cur.checkpoint_ops[-1] if cur.checkpoint_ops else -1
                    if not last < n <= cur.op_count:
                        raise RecordError(f"checkpoint at op {n} is out of order")
                    cur.checkpoint_ops.append(n)
                    cur.checkpoint_offsets.append(pos)
                elif kind == Kind.BLOB:
                    (n,) = peek_ints(decompress_prefix(flags, body), 1)
                    if n != len(cur.blob_offsets):
                        raise RecordError(f"blob {n} is out of order")
                    cur.blob_offsets.append(pos)
                elif kind == Kind.COMMIT:
                    if flags or len(body) != COMMIT_BODY.size:
                        raise RecordError("malformed commit record")
                    ops, index_at = COMMIT_BODY.unpack(body)
                    if ops != cur.op_count:
                        raise RecordError(f"commit of {ops} ops after {cur.op_count} ops")
                    committed = (len(cur.batch_firsts), len(cur.checkpoint_ops), len(cur.blob_offsets), ops)
                    final = bool(index_at)
                elif kind == Kind.HEADER:
                    raise RecordError("a second header")
                elif kind != Kind.INDEX:
                    unknown[kind] = unknown.get(kind, 0) + 1
            except RecordError as e:
                stop = f"{what} ({kind_name(kind)}) at offset {pos:#x}: {e}"
                break
            pos += FRAME_SIZE + len(body)
            rec_no += 1
            if final:
                break
        for k, n in sorted(unknown.items()):
            self.warnings.append(f"{self.name}: skipped {n} record{'s' if n > 1 else ''} of unknown kind {k}")
        nb, nc, nl, ops = committed or (0, 0, 0, 0)
        lay = _Layout(ops, cur.batch_firsts[:nb], cur.batch_offsets[:nb], cur.checkpoint_ops[:nc],
                      cur.checkpoint_offsets[:nc], cur.blob_offsets[:nl])
        if final:
            if pos < self.size:
                self.warnings.append(f"{self.name}: ignored {self.size - pos} bytes after the end "
                                     "of the snapshot")
        else:
            self.truncated = True
            why = f" ({stop})" if stop else " (it ends without its index: the writer did not finish)"
            self.warnings.append(f"{self.name}: recovered {ops} ops; file truncated after op {ops}{why}")
        return lay

    # --- lazy loads ----------------------------------------------------------------------------------
    def _batch_of(self, op_number: int) -> int:
        return bisect.bisect_right(self._layout.batch_firsts, op_number) - 1

    def _batch_range(self, i: int) -> tuple[int, int]:
        firsts = self._layout.batch_firsts
        end = firsts[i + 1] if i + 1 < len(firsts) else self._layout.op_count
        return firsts[i], end - firsts[i]

    def _load_batch(self, i: int) -> list[OpRecord]:
        first, count = self._batch_range(i)
        what = f"the op batch for ops {first}-{first + count - 1}"
        off = self._layout.batch_offsets[i]
        payload = self._expect(off, Kind.OPS, what)
        try:
            return decode_ops(payload, first, count, self.limits.max_depth)
        except RecordError as e:
            raise SnapshotCorruptError(f"{self.name}: {what} at offset {off:#x}: {e}") from None

    def _cached_batch(self, i: int) -> list[OpRecord]:
        recs = self._cache.get(i)
        if recs is None:
            recs = self._load_batch(i)
            with self._lock:  # a UI may read from worker threads
                while len(self._cache) >= 4:
                    self._cache.pop(next(iter(self._cache)))
                self._cache[i] = recs
        return recs

    def _load_checkpoint(self, i: int) -> Any:
        n = self._layout.checkpoint_ops[i]
        off = self._layout.checkpoint_offsets[i]
        what = f"the checkpoint at op {n}"
        payload = self._expect(off, Kind.CHECKPOINT, what)
        if type(payload) is not list or len(payload) != 3 or payload[0] != n:
            raise SnapshotCorruptError(f"{self.name}: {what} at offset {off:#x} is malformed")
        budget = [self.limits.max_checkpoint_total]
        blobs: dict[int, bytes] = {}
        offsets = self._layout.blob_offsets

        def fetch(no: int) -> bytes:
            data = blobs.get(no)
            if data is not None:
                # the expanded size counts every reference: one blob named by N page
                # tables becomes N tables in the engine (a small file must not expand
                # without bound)
                budget[0] -= len(data)
                if budget[0] < 0:
                    raise RecordError(f"its blobs, counted at every reference, exceed the limit of "
                                      f"{self.limits.max_checkpoint_total} bytes")
                return data
            if not 0 <= no < len(offsets):
                raise RecordError(f"refers to blob {no}, which the file does not have")
            bwhat = f"blob {no} (for {what})"
            bp = self._expect(offsets[no], Kind.BLOB, bwhat, min(self.limits.max_blob, budget[0] + 64))
            data = decode_blob(bp, no)
            budget[0] -= len(data)
            if budget[0] < 0:
                raise RecordError(f"its blobs exceed the limit of {self.limits.max_checkpoint_total} bytes")
            blobs[no] = data
            return data

        try:
            return join_blobs(payload[1], payload[2], fetch, self.limits.max_depth)
        except RecordError as e:
            raise SnapshotCorruptError(f"{self.name}: {what} at offset {off:#x}: {e}") from None


class OpSequence(Sequence[OpRecord]):
    """``Snapshot.ops``: the op records, decoded one batch at a time as they are used."""

    def __init__(self, snap: Snapshot) -> None:
        self._snap = snap

    def __len__(self) -> int:
        return self._snap.op_count

    @overload
    def __getitem__(self, i: int) -> OpRecord: ...

    @overload
    def __getitem__(self, i: slice) -> list[OpRecord]: ...

    def __getitem__(self, i: int | slice) -> OpRecord | list[OpRecord]:
        n = self._snap.op_count
        if isinstance(i, slice):
            start, stop, step = i.indices(n)
            if step == 1:
                return list(self._range(start, stop))
            return [self[j] for j in range(start, stop, step)]
        if not isinstance(i, int):
            raise TypeError("op indices must be integers or slices")
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError("op number out of range")
        b = self._snap._batch_of(i)
        recs = self._snap._cached_batch(b)
        return recs[i - self._snap._layout.batch_firsts[b]]

    def iter_range(self, start: int, stop: int | None = None) -> Iterator[OpRecord]:
        """Ops ``start`` to ``stop - 1`` (default: to the end), decoded one batch at a time.

        Unlike ``ops[start:stop]`` this never holds more than a batch in memory:
        use it to replay long stretches.
        """
        n = self._snap.op_count
        stop = n if stop is None else min(stop, n)
        return self._range(max(start, 0), stop)

    def _range(self, start: int, stop: int) -> Iterator[OpRecord]:
        if start >= stop:
            return
        snap = self._snap
        b = snap._batch_of(start)
        while start < stop:
            first, count = snap._batch_range(b)
            recs = snap._cached_batch(b) if stop - start < count else snap._load_batch(b)
            yield from recs[start - first:stop - first]
            start = first + count
            b += 1

    def __iter__(self) -> Iterator[OpRecord]:
        return self._range(0, self._snap.op_count)


class CheckpointTable(Mapping[int, Any]):
    """``Snapshot.checkpoints``: op number -> state, each decoded afresh when accessed."""

    def __init__(self, snap: Snapshot) -> None:
        self._snap = snap

    def __getitem__(self, op_number: int) -> Any:
        ops = self._snap._layout.checkpoint_ops
        i = bisect.bisect_left(ops, op_number) if type(op_number) is int else len(ops)
        if i == len(ops) or ops[i] != op_number:
            raise KeyError(op_number)
        return self._snap._load_checkpoint(i)

    def __iter__(self) -> Iterator[int]:
        return iter(list(self._snap._layout.checkpoint_ops))

    def __len__(self) -> int:
        return len(self._snap._layout.checkpoint_ops)

    def __contains__(self, op_number: object) -> bool:
        ops = self._snap._layout.checkpoint_ops
        if type(op_number) is not int:
            return False
        i = bisect.bisect_left(ops, op_number)
        return i < len(ops) and ops[i] == op_number


# --- helpers ---------------------------------------------------------------------------------------------


def _reason(e: OSError) -> str:
    if e.errno == errno.ENOENT:
        return "no such file"
    if e.errno == errno.EISDIR:
        return "it is a directory"
    if e.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    return os.strerror(e.errno).lower() if e.errno else (str(e) or type(e).__name__)


def _int_list(v: Any, name: str, pairs: bool = False) -> list[int]:
    if type(v) is not list or not set(map(type, v)) <= {int} or (pairs and len(v) % 2):
        raise RecordError(f"the index's {name} list is malformed")
    return v


def _ascending(v: list[int], name: str, strict: bool) -> None:
    if any(b <= a if strict else b < a for a, b in zip(v, v[1:], strict=False)):
        raise RecordError(f"the index's {name} are out of order")


__all__ = ["CheckpointTable", "OpSequence", "Snapshot", "SnapshotError", "open_snapshot"]
