# SPDX-License-Identifier: GPL-2.0-only
"""``.ptsnap`` snapshots: save, load and replay sessions in a versioned msgpack container.

The container layer (this package's public API)::

    from snapshots import SnapshotHeader, SnapshotWriter, save_snapshot, open_snapshot

    header = SnapshotHeader(kernel="v7.0", granule="4K", cpu="neoverse-n1", policy="mainline",
                            seed=1, scenario_name="demo", scenario_source=text)

    # streaming, as a run goes (commits every 10000 ops; renamed into place on close)
    with SnapshotWriter("run.ptsnap", header) as w:
        w.add_checkpoint(0, initial_plain_state)
        w.add_op(op.to_plain(), counters, digest)          # -> op number (0, 1, ...)
        w.add_checkpoint(w.op_count, plain_state)          # state after w.op_count ops

    # or all at once
    save_snapshot("run.ptsnap", header, [(op_plain, counters, digest), ...], {0: state0, 5000: state5000})

    with open_snapshot("run.ptsnap") as snap:
        snap.header, snap.ops[i] (OpRecord: number, op, counters, digest), len(snap.ops)
        snap.checkpoint_for(n) -> Checkpoint(op_number, state) | None
        snap.checkpoints[op_number] -> state; snap.truncated; snap.warnings

Every failure is a :class:`SnapshotError` whose ``str()`` is one line naming
the file and the problem. The format is specified in ``docs/snapshot-format.md``.
"""

from snapshots.blobs import Checkpoint
from snapshots.errors import (
    SnapshotCorruptError,
    SnapshotError,
    SnapshotFormatError,
    SnapshotIOError,
    SnapshotVersionError,
    SnapshotWriteError,
)
from snapshots.framing import FORMAT_VERSION, Limits
from snapshots.fsio import FileSystem
from snapshots.header import SnapshotHeader
from snapshots.op_batches import OpRecord
from snapshots.reader import CheckpointTable, OpSequence, Snapshot, open_snapshot
from snapshots.writer import SnapshotWriter, save_snapshot

__all__ = [
    "FORMAT_VERSION",
    "Checkpoint",
    "CheckpointTable",
    "FileSystem",
    "Limits",
    "OpRecord",
    "OpSequence",
    "Snapshot",
    "SnapshotCorruptError",
    "SnapshotError",
    "SnapshotFormatError",
    "SnapshotHeader",
    "SnapshotIOError",
    "SnapshotVersionError",
    "SnapshotWriteError",
    "SnapshotWriter",
    "open_snapshot",
    "save_snapshot",
]
