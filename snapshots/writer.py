# SPDX-License-Identifier: GPL-2.0-only
"""Writing ``.ptsnap`` files: streaming (:class:`SnapshotWriter`) or all at once (:func:`save_snapshot`).

Both write ``NAME.partial`` next to the target and rename it over the target
only when everything is written and fsynced, so an existing file is replaced
atomically on success and left untouched on any failure. While a streaming
writer runs, ``commit()`` (automatic every ``commit_every`` ops) makes the
records so far durable in the ``.partial`` file: if the process dies, that
file still loads up to its last commit (``Snapshot.truncated`` is then True).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Iterable, Mapping
from itertools import islice
from typing import Any

from snapshots.blobs import encode_blob, split_blobs
from snapshots.codec import check_plain, pack
from snapshots.framing import (
    COMMIT_BODY,
    DEFAULT_LIMITS,
    FORMAT_VERSION,
    Kind,
    Limits,
    encode_frame,
    encode_preamble,
)
from snapshots.fsio import AtomicFile, FileSystem
from snapshots.header import SnapshotHeader, check_created, created_now
from snapshots.op_batches import MAX_BATCH, OpRecord, encode_ops, encode_ops_body


class SnapshotWriter:
    """Append a session to a snapshot as it runs.

    Typical use by the session layer::

        with SnapshotWriter("run.ptsnap", header) as w:
            w.add_checkpoint(0, machine.state_to_plain(machine.state()))
            for op in ops:
                machine.apply(op)
                w.add_op(op.to_plain(), counters_of_this_op, machine.digest())
                if w.op_count % 5000 == 0:
                    w.add_checkpoint(w.op_count, machine.state_to_plain(machine.state()))
        # leaving the block normally writes the index, commits and renames into place;
        # leaving it with an exception discards the partial file (the target is untouched)

    Numbering: ops are numbered from 0 in the order added. A checkpoint at
    ``op_number`` n holds the state *after the first n ops* (n = 0: the
    initial state), i.e. the state op n is applied to. Checkpoint numbers must
    increase and may not exceed the number of ops added so far.

    Values: ``op`` is a dict of plain data (``Op.to_plain()``), ``counters`` a
    dict of str -> int/float, ``digest`` a str (a lowercase hex digest is
    stored as bytes) or bytes. A checkpoint state is plain data: dicts with
    str keys, lists/tuples, str, int, float, bool, None, bytes; tuples come
    back as lists. Give each packed page table its own bytes value: every
    bytes value of ``BLOB_MIN`` (512) bytes or more is stored once per
    content and shared by all checkpoints that contain it. Pack other big
    homogeneous tables (folios, TLB entries) as bytes too; thousands of small
    lists cost milliseconds per checkpoint to check, store and load. The writer keeps
    references to the op dicts of the current batch (``batch_size`` ops)
    until it writes them: do not mutate them after ``add_op``.

    Options: ``commit_every`` ops between automatic commits (None: only at
    close); ``fsync`` whether a commit also fsyncs (``close`` always does);
    ``batch_size`` ops per op batch record; ``compress_level`` zlib level
    (0: none); ``fs`` the :class:`~snapshots.fsio.FileSystem` to write
    through (tests inject failures with it); ``limits`` the
    :class:`~snapshots.framing.Limits` the reader will apply.

    Errors: :class:`~snapshots.errors.SnapshotWriteError` (one line) when the
    file system fails; the writer is then closed, the partial file removed
    and the target untouched. ValueError/TypeError for values that cannot be
    stored (the writer is then closed the same way). Any exception that
    leaves a ``with`` block, KeyboardInterrupt included, discards the file: to
    keep a run the user stops, stop between ``add_op`` calls (a cancel flag)
    and let the block end normally. Not thread-safe: one thread writes.
    """

    def __init__(self, path: str | os.PathLike[str], header: SnapshotHeader, *,
                 commit_every: int | None = 10_000, batch_size: int = 1024, compress_level: int = 1,
                 fsync: bool = True, fs: FileSystem | None = None, limits: Limits = DEFAULT_LIMITS) -> None:
        if not isinstance(header, SnapshotHeader):
            raise TypeError("header must be a SnapshotHeader")
        if commit_every is not None and commit_every <= 0:
            raise ValueError("commit_every must be positive (or None: commit only at close)")
        if not 1 <= batch_size <= MAX_BATCH:
            raise ValueError(f"batch_size must be between 1 and {MAX_BATCH}")
        if not 0 <= compress_level <= 9:
            raise ValueError("compress_level must be 0 (none) to 9")
        created = header.created or created_now()
        check_created(created)
        self.header = dataclasses.replace(header, created=created)
        check_plain(self.header.to_plain(), limits.max_depth, lenient=True, where="header")
        SnapshotHeader.from_plain(self.header.to_plain())  # what the reader will check (field types)
        header_payload = pack(self.header.to_plain())
        if len(header_payload) > limits.max_header:
            raise ValueError(f"the header is too big ({len(header_payload)} bytes)")
        self.limits = limits
        self.commit_every = commit_every
        self.batch_size = batch_size
        self.compress_level = compress_level
        self.fsync = fsync
        self._pending: list[tuple[Any, Any, Any]] = []
        self._ops = 0
        self._flushed_ops = 0
        self._committed_ops = 0
        self._batches: list[int] = []  # first op, offset, first op, offset, ...
        self._checkpoints: list[int] = []  # op number, offset, ...
        self._last_checkpoint = -1
        self._blobs: list[int] = []  # offset of blob i
        self._blob_ids: dict[bytes, int] = {}
        # id(value) -> (value, its blob id) for the previous checkpoint's blobs. Checkpoints share
        # their unchanged chunks with the one before (engine.state.chunks), so most blobs are the
        # very same objects again: hashing megabytes per checkpoint was most of a save. Holding
        # the values keeps each id() from being reused; one checkpoint's worth bounds the memory.
        self._prev_blob_ids: dict[int, tuple[bytes, bytes]] = {}
        self._stop_at = 0
        self._file = AtomicFile(path, fs)
        self.path = self._file.target
        self.name = self._file.name
        self._write(encode_preamble(FORMAT_VERSION))
        # never compressed: then `created` (fixed width) moves no other byte of the file
        self._frame(Kind.HEADER, header_payload, compress=False)
        self.commit()

    # --- properties -------------------------------------------------------------------------
    @property
    def op_count(self) -> int:
        """Ops added so far (the number the next op gets)."""
        return self._ops

    @property
    def committed_ops(self) -> int:
        """Ops made durable by the last commit."""
        return self._committed_ops

    @property
    def closed(self) -> bool:
        return self._file.closed

    @property
    def partial_path(self) -> str:
        """Where the file is written until :meth:`close` renames it into place."""
        return self._file.temp

    # --- adding records -----------------------------------------------------------------------
    def add_op(self, op: dict[str, Any], counters: dict[str, int], digest: str | bytes) -> int:
        """Record one op, its cost counters and the state digest after it; returns its number."""
        n = self._ops
        if self._file.fd is None or not (isinstance(op, dict) and isinstance(counters, dict)
                                         and isinstance(digest, (str, bytes))):
            self._check_open()
            self._fail(TypeError(f"op {n}: need add_op(dict, dict, str | bytes), not add_op("
                                 f"{type(op).__name__}, {type(counters).__name__}, {type(digest).__name__})"))
        self._pending.append((op, counters, digest))
        self._ops = n + 1
        if n + 1 >= self._stop_at:  # a batch is full or a commit is due
            self._at_stop()
        return n

    def add_ops(self, records: Iterable[OpRecord | tuple[dict[str, Any], dict[str, int], str | bytes]],
                ) -> int:
        """Record many ops at once, like ``add_op`` on each (but faster); returns ``op_count``.

        Takes ``(op, counters, digest)`` tuples or :class:`OpRecord`\\ s. A bad
        value is reported (ValueError/TypeError naming the op) when its batch
        is written, at the latest by ``close()``.
        """
        self._check_open()
        it = iter(records)
        while True:
            room = self.batch_size - len(self._pending)
            if self.commit_every is not None:
                room = min(room, self.commit_every - (self._ops - self._committed_ops))
            chunk: list[Any] = list(islice(it, max(room, 1)))  # records or (op, counters, digest)
            if not chunk:
                return self._ops
            if OpRecord in set(map(type, chunk)):
                chunk = [tuple(r[1:]) if isinstance(r, OpRecord) else r for r in chunk]
            self._pending += chunk
            self._ops += len(chunk)
            if self._ops >= self._stop_at:
                self._at_stop()

    def add_checkpoint(self, op_number: int, state: Any) -> None:
        """Record the state after the first ``op_number`` ops (plain data; see the class doc)."""
        self._check_open()
        if type(op_number) is not int or not 0 <= op_number <= self._ops:
            self._fail(ValueError(f"checkpoint at op {op_number!r}: must be between 0 and the "
                                  f"{self._ops} ops added so far"))
        if op_number <= self._last_checkpoint:
            self._fail(ValueError(f"checkpoint at op {op_number}: checkpoints must come in increasing "
                                  f"op order (the last was at op {self._last_checkpoint})"))
        self._flush_ops()
        try:
            # the state sits one level down in the checkpoint payload [op_number, state, refs]
            tree, paths, blobs = split_blobs(state, self.limits.max_depth - 1)
        except ValueError as e:
            self._fail(ValueError(f"checkpoint at op {op_number}: {e}"))
        prev = self._prev_blob_ids
        cached = [prev.get(id(b)) for b in blobs]
        ids = [c[1] if c is not None and c[0] is b else hashlib.blake2b(b, digest_size=16).digest()
               for b, c in zip(blobs, cached, strict=True)]
        self._prev_blob_ids = {id(b): (b, i) for b, i in zip(blobs, ids, strict=True)}
        unique = dict(zip(ids, map(len, blobs), strict=True))
        if any(size + 16 > self.limits.max_blob for size in unique.values()):
            self._fail(ValueError(f"checkpoint at op {op_number}: a bytes value is larger than "
                                  f"{self.limits.max_blob} bytes"))
        refs = []
        for path, blob_id, data in zip(paths, ids, blobs, strict=True):
            no = self._blob_ids.get(blob_id)
            if no is None:
                no = len(self._blobs)
                self._blobs.append(self._frame(Kind.BLOB, pack(encode_blob(no, data))))
                self._blob_ids[blob_id] = no
            refs.append([path, no])
        try:
            payload = pack([op_number, tree, refs])
        except ValueError as e:
            self._fail(ValueError(f"checkpoint at op {op_number}: {e}"))
        if len(payload) > self.limits.max_checkpoint or \
                len(payload) + sum(unique.values()) > self.limits.max_checkpoint_total:
            self._fail(ValueError(f"checkpoint at op {op_number} is too big ({len(payload)} bytes "
                                  f"+ {sum(unique.values())} bytes of blobs)"))
        self._checkpoints += [op_number, self._frame(Kind.CHECKPOINT, payload)]
        self._last_checkpoint = op_number

    def commit(self) -> None:
        """Make everything added so far durable (flush, commit record, fsync)."""
        self._check_open()
        self._flush_ops()
        self._frame(Kind.COMMIT, COMMIT_BODY.pack(self._flushed_ops, 0), compress=False)
        if self.fsync:
            self._file.sync()
        else:
            self._file.flush()
        self._committed_ops = self._flushed_ops
        self._update_stop()

    def close(self) -> None:
        """Write the index and the final commit, then put the file in place of the target."""
        if self.closed:
            return
        self._flush_ops()
        index = {"op_count": self._flushed_ops, "batches": self._batches, "checkpoints": self._checkpoints,
                 "blobs": self._blobs}
        payload = pack(index)
        if len(payload) > self.limits.max_index:
            self._fail(ValueError(f"the index is too big ({len(payload)} bytes)"))
        at = self._frame(Kind.INDEX, payload)
        self._frame(Kind.COMMIT, COMMIT_BODY.pack(self._flushed_ops, at), compress=False)
        self._file.commit()
        self._committed_ops = self._flushed_ops

    def abort(self) -> None:
        """Give up: remove the partial file; the target is left as it was."""
        self._pending = []
        self._file.discard()

    def __enter__(self) -> SnapshotWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    # --- internals ----------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self.closed:
            raise ValueError(f"{self.name}: the snapshot writer is closed")

    def _fail(self, e: Exception) -> Any:
        self.abort()
        raise e

    def _write(self, data: bytes) -> int:
        return self._file.write(data)

    def _frame(self, kind: int, payload: bytes, compress: bool = True) -> int:
        return self._file.write(encode_frame(kind, payload, self.compress_level if compress else 0))

    def _at_stop(self) -> None:
        if len(self._pending) >= self.batch_size:
            self._flush_ops()
        if self.commit_every is not None and self._ops - self._committed_ops >= self.commit_every:
            self.commit()

    def _update_stop(self) -> None:
        """The op count at which add_op must flush a batch or commit (one comparison per op)."""
        stop = self._flushed_ops + self.batch_size
        if self.commit_every is not None:
            stop = min(stop, self._committed_ops + self.commit_every)
        self._stop_at = stop

    def _flush_ops(self) -> None:
        if not self._pending:
            return
        # the counts and the index only ever describe batches that are in the file
        pending = self._pending
        self._write_batch(self._flushed_ops, pending)
        self._pending = []
        self._flushed_ops += len(pending)
        self._update_stop()

    def _write_batch(self, first: int, records: list[tuple[Any, Any, Any]]) -> None:
        try:
            plain = encode_ops(first, records)  # checks counters and digests
            # checks the ops as the reader will
            body, inner_size = encode_ops_body(plain, self.compress_level, self.limits.max_depth)
        except (ValueError, TypeError) as e:
            where = f"ops {first}-{first + len(records) - 1}"
            self._fail(type(e)(self._find_bad_op(first, records) or f"{where}: {e}"))
        if max(len(body), inner_size) > self.limits.max_ops:
            if len(records) == 1:
                self._fail(ValueError(f"op {first} is too big to store ({inner_size} bytes)"))
            half = len(records) // 2
            self._write_batch(first, records[:half])
            self._write_batch(first + half, records[half:])
            return
        self._batches += [first, self._frame(Kind.OPS, body, compress=False)]  # the body compresses itself

    def _find_bad_op(self, first: int, records: list[tuple[Any, Any, Any]]) -> str | None:
        for i, (op, counters, digest) in enumerate(records):
            if not (isinstance(op, dict) and isinstance(counters, dict) and isinstance(digest, (str, bytes))):
                return (f"op {first + i}: need (dict, dict, str | bytes), not ({type(op).__name__}, "
                        f"{type(counters).__name__}, {type(digest).__name__})")
            try:
                # an op sits 3 levels down in a batch: [.., [.., op, ..], ..]
                check_plain(op, self.limits.max_depth - 2, lenient=True, where=f"op {first + i}")
            except ValueError as e:
                return str(e)
            for k, v in counters.items():
                if not isinstance(k, str):
                    return f"op {first + i}: counter name {k!r} is not a string"
                if isinstance(v, bool) or not isinstance(v, (int, float)):
                    return f"op {first + i}: counter {k!r} is {v!r}, not a number"
            try:
                pack([op, counters])
            except ValueError as e:
                return f"op {first + i}: {e}"
        return None


def save_snapshot(path: str | os.PathLike[str], header: SnapshotHeader,
                  ops: Iterable[OpRecord | tuple[dict[str, Any], dict[str, int], str | bytes]],
                  checkpoints: Mapping[int, Any] | Iterable[tuple[int, Any]] = (), *,
                  compress_level: int = 1, commit_every: int | None = 1024, fs: FileSystem | None = None,
                  limits: Limits = DEFAULT_LIMITS) -> int:
    """Write a whole session at once, atomically; returns the number of ops saved.

    ``ops`` yields ``(op, counters, digest)`` tuples or :class:`OpRecord`\\ s
    (so ``save_snapshot(p, snap.header, snap.ops, snap.checkpoints)`` copies
    a snapshot). ``checkpoints`` maps op numbers to plain states, or yields
    ``(op_number, state)`` pairs in increasing order (a generator keeps only
    one state in memory at a time). Either the whole file replaces ``path``
    or, on any error, ``path`` is left as it was. Commit records go in every
    ``commit_every`` ops (without an fsync each: the file only appears at
    ``path`` once it is complete and fsynced), so that even a copy of the file
    that was cut short still loads up to its last commit.
    """
    with SnapshotWriter(path, header, commit_every=commit_every, fsync=False, compress_level=compress_level,
                        fs=fs, limits=limits) as w:
        # a mapping is read one state at a time (a Snapshot's checkpoints decode on access)
        items = ((k, checkpoints[k]) for k in sorted(checkpoints)) if isinstance(checkpoints, Mapping) \
            else checkpoints
        op_iter = iter(ops)
        for n, state in items:
            if type(n) is int and n > w.op_count:
                w.add_ops(islice(op_iter, n - w.op_count))
            w.add_checkpoint(n, state)  # complains if the ops ran out before n
        return w.add_ops(op_iter)
