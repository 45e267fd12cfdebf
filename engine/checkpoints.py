# SPDX-License-Identifier: GPL-2.0-only
"""A session's checkpoints: machine states before some ops, so that seeking
anywhere restores the nearest one and re-runs at most one interval.

Checkpoints are taken at deterministic places -- every ``every_ops`` ops or
``every_events`` events of work since the last one, whichever comes first --
and only at the recorded frontier, so the same run always has the same
checkpoints (the snapshot writer saves them, bench.fingerprint compares them).
When there are more than ``max_count``, every other one goes and the intervals
double, so a run of any length keeps a bounded number.

A checkpoint may be stored as :data:`LAZY` (a snapshot that has it on disk) and
fetched by ``loader`` the first time it is needed.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable

from engine.contract import MachineState
from engine.errors import SessionError

LAZY = object()  # a checkpoint not loaded yet (see CheckpointStore.loader)


# A live session seeks by restoring the nearest checkpoint and re-running ops from
# there, ~0.1 ms an op of the bench session, so the interval sets the seek time
# (median: half an interval). The count bound is what bounds the memory: a checkpoint
# costs what changed since the one before (the bench session's, ~160 KB), so a
# million-op session keeps 4000 (1.1 GB RSS in all, 0.8 GB at 500 ops apart) and a
# longer one thins them to every 500 ops.
EVERY_OPS = 250
EVERY_EVENTS = 100_000
MAX_COUNT = 4096
# A snapshot file keeps every other one (SAVED_SPACING times the intervals): the
# file is written in half the time and is half the size, and a reopened session
# seeks a little slower than the live one did.
SAVED_SPACING = 2


def spaced(keys: list[int], n_events: Callable[[int], int], every_ops: int,
           every_events: int) -> list[int]:
    """The checkpoints (sorted op numbers ``keys``) a snapshot keeps: the first, and each
    one at least ``every_ops`` ops or ``every_events`` events (``n_events(op)``, at least
    1 an op, as CheckpointStore counts them) after the last one kept -- the places a
    store with those intervals would have checkpointed."""
    out: list[int] = []
    since = 0  # events from the last one kept to prev
    prev = 0
    for c in keys:
        if out and c - out[-1] < every_ops:  # only then do the events decide
            since += sum(max(n_events(j), 1) for j in range(prev, c))
            if since < every_events:
                prev = c
                continue
        out.append(c)
        since = 0
        prev = c
    return out


class CheckpointStore:
    def __init__(self, first: MachineState, *, every_ops: int = EVERY_OPS,
                 every_events: int = EVERY_EVENTS, max_count: int = MAX_COUNT,
                 on_checkpoint: Callable[[int, MachineState], None] | None = None):
        # op number -> state (or LAZY). Others may replace or extend the dict (a snapshot
        # loader does): the sorted keys are cached against its identity and length.
        self.states: dict[int, MachineState] = {0: first}
        self.loader: Callable[[int], MachineState] | None = None
        self.every_ops = every_ops
        self.every_events = every_events
        self.max_count = max_count
        self.on_checkpoint = on_checkpoint
        self._tag: tuple[int, int] | None = None
        self._keys: list[int] = []
        self._since = 0  # events run since the last checkpoint

    def keys(self) -> list[int]:
        """The checkpoint op numbers, sorted."""
        cp = self.states
        tag = (id(cp), len(cp))
        if self._tag != tag:
            self._keys = sorted(cp)
            self._tag = tag
        return self._keys

    def at_or_before(self, k: int) -> int:
        """The op number of the last checkpoint at or before op k."""
        keys = self.keys()
        return keys[bisect_right(keys, k) - 1]

    def get(self, c: int) -> MachineState:
        """The state at checkpoint c, loaded if it was LAZY."""
        st = self.states[c]
        if st is LAZY:
            if self.loader is None:
                raise SessionError(f"checkpoint {c} is not loaded and there is no loader")
            st = self.loader(c)
            self.states[c] = st
        return st

    def after_op(self, k: int, n_events: int, state: Callable[[], MachineState]) -> None:
        """Op k - 1 ran (n_events events) and the machine is at op k: take a checkpoint
        there (``state()``) if the interval since the last one is full."""
        self._since += max(n_events, 1)
        if k in self.states:
            self._since = 0
            return
        keys = self.keys()
        prev = keys[bisect_right(keys, k) - 1]
        if k - prev >= self.every_ops or self._since >= self.every_events:
            if k > keys[-1]:  # only extend the frontier's checkpoint chain
                st = state()
                self.states[k] = st
                if self.on_checkpoint is not None:
                    self.on_checkpoint(k, st)
                self._thin()
            self._since = 0

    def saved(self, n_events: Callable[[int], int]) -> list[int]:
        """The checkpoints a snapshot file keeps (see SAVED_SPACING)."""
        return spaced(self.keys(), n_events, SAVED_SPACING * self.every_ops,
                      SAVED_SPACING * self.every_events)

    def _thin(self) -> None:
        if len(self.states) <= self.max_count:
            return
        # keep 0 and every other checkpoint, then space future ones twice as far
        keys = sorted(self.states)
        for i, key in enumerate(keys):
            if key and i % 2 == 1:
                del self.states[key]
        self._tag = None  # the length alone may come back to a cached value
        self.every_ops *= 2
        self.every_events *= 2
