# SPDX-License-Identifier: GPL-2.0-only
"""Sessions to and from ``.ptsnap`` files, and replay with verification.

A session knows how it was made through ``session.meta``: the machine kind
(``"scenario"`` for the core-mm machine, ``"api"`` for direct ptep calls) and
its configuration as plain data. That goes into the header's ``extra``; ops,
per-op counters and digests become op records; the session's checkpoints
become checkpoint records. Loading builds the same machine from the header,
fills the session's records from the file (nothing is re-run) and fetches
checkpoints lazily, so opening a million-op file and seeking is quick.

Loading never imports code: a snapshot names its fold policy; a policy that
is not built in must be supplied again by the user (``policy=...``), and
until then the session runs with ``mainline`` and says so in its warnings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.machines import machine_factory
from engine.ops import Op
from engine.session import LAZY, OpRecord, Position, Session
from snapshots.errors import SnapshotError
from snapshots.header import SnapshotHeader
from snapshots.reader import Snapshot, open_snapshot
from snapshots.writer import save_snapshot

BUILTIN_POLICY_NAMES = ("mainline", "never", "any-entry", "scan", "kernel", "default", "any")


def _counters_plain(counters: dict[str, Any]) -> dict[str, int]:
    # cycles are recomputed from the counters (deterministic); call:* counts
    # are kept: they are what the op log expands into.
    return {k: int(v) for k, v in counters.items() if isinstance(v, int) and not isinstance(v, bool)}


def session_header(session: Session, created: str = "") -> SnapshotHeader:
    meta = session.meta
    cfg = dict(meta.get("config", {}))
    policy = cfg.get("policy") or "mainline"
    extra = {"machine": meta.get("machine", "scenario"), "config": cfg,
             "totals": {k: (round(v, 3) if isinstance(v, float) else int(v))
                        for k, v in sorted(session.totals().items()) if not k.startswith("call:")}}
    if isinstance(meta.get("ui"), dict):  # where the TUI was (position, breakpoints): plain data
        extra["ui"] = meta["ui"]
    return SnapshotHeader(
        kernel=str(cfg.get("kernel", "v7.0")), granule=str(cfg.get("granule", "4K")),
        cpu=str(cfg.get("cpu", "neoverse-n1")), policy=str(policy), seed=int(cfg.get("seed", 1)),
        scenario_name=session.name, scenario_source=session.source, created=created, extra=extra)


def save_session(session: Session, path: str, *, created: str = "",
                 progress: Callable[[str, int, int], None] | None = None,
                 run_remaining: bool = True) -> None:
    """Save the session atomically (a failed save leaves any previous file
    intact): every op with its counters and digest, and every checkpoint.
    Ops not executed yet are run first (unless ``run_remaining`` is False, as
    for a run the user interrupted), so the file normally holds the whole op
    list; the session's position is kept. Raises SnapshotError."""
    m = session.machine
    if run_remaining and session.executed < len(session.ops):
        keep = session.position
        session.run(progress=(lambda k, total: progress("run", k, total)) if progress else None)
        session.seek(keep)
    n = session.executed

    def ops() -> Iterator[tuple[Any, Any, Any]]:
        # Ops come from the scenario's iterator (indexing re-expands its repeat
        # blocks for every op), and records share equal counter dicts, as op
        # lists repeat Op objects: each distinct object is converted once. The
        # caches hold the objects themselves, so an id() is never reused.
        plain_counters: dict[int, tuple[Any, dict[str, int]]] = {}
        plain_ops: dict[int, tuple[Any, Any]] = {}
        records = session.records
        for k, op in zip(range(n), session.ops, strict=False):
            r = records[k]
            if progress is not None and k % 4096 == 0:
                progress("ops", k, n)
            c = plain_counters.get(id(r.counters))
            if c is None:
                if len(plain_counters) >= 65536:
                    plain_counters.clear()
                c = plain_counters[id(r.counters)] = (r.counters, _counters_plain(r.counters))
            o = plain_ops.get(id(op))
            if o is None:
                if len(plain_ops) >= 65536:
                    plain_ops.clear()
                o = plain_ops[id(op)] = (op, op.to_plain())
            yield o[1], c[1], r.digest

    cps = sorted(c for c in session.checkpoints if c <= n)

    class _Plain(Mapping):  # converted one at a time, so big sessions do not double in memory
        def __iter__(self):
            return iter(cps)

        def __getitem__(self, c):
            return m.state_to_plain(session.checkpoint(c))

        def __len__(self):
            return len(cps)

    save_snapshot(path, session_header(session, created), ops(), _Plain())


class _OpsView(Sequence[Op]):
    """The snapshot's ops as Op objects, converted on demand."""

    def __init__(self, snap: Snapshot):
        self.snap = snap
        self._cache: dict[int, Op] = {}

    def __len__(self) -> int:
        return len(self.snap.ops)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        op = self._cache.get(i)
        if op is None:
            op = Op.from_plain(self.snap.ops[i].op)
            if len(self._cache) > 65536:
                self._cache.clear()
            self._cache[i] = op
        return op


class _RecordsView:
    """The session's per-op records backed by the snapshot; appends go to a tail."""

    def __init__(self, snap: Snapshot, cost_fn: Callable[[Any], float]):
        self.snap = snap
        self.cost_fn = cost_fn
        self.n = len(snap.ops)
        self.tail: list[OpRecord] = []
        self._cache: dict[int, OpRecord] = {}

    def __len__(self) -> int:
        return self.n + len(self.tail)

    def append(self, rec: OpRecord) -> None:
        self.tail.append(rec)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if i >= self.n:
            return self.tail[i - self.n]
        r = self._cache.get(i)
        if r is None:
            rec = self.snap.ops[i]
            counters = dict(rec.counters)
            r = OpRecord(counters, float(self.cost_fn(counters)), bytes(rec.digest),
                         int(counters.get("events", 0)))
            if len(self._cache) > 65536:
                self._cache.clear()
            self._cache[i] = r
        return r


@dataclass
class Loaded:
    session: Session
    snapshot: Snapshot
    header: SnapshotHeader
    warnings: list[str] = field(default_factory=list)


def _machine_config(header: SnapshotHeader, overrides: dict[str, Any], warnings: list[str]) -> dict:
    cfg = dict(header.extra.get("config", {})) if isinstance(header.extra.get("config"), dict) else {}
    for k in ("kernel", "granule", "cpu", "seed"):
        cfg.setdefault(k, getattr(header, k))
    if not cfg.get("policy"):
        cfg["policy"] = header.policy
    pol = str(cfg.get("policy") or "mainline")
    if not overrides.get("policy") and pol not in BUILTIN_POLICY_NAMES:
        warnings.append(f"the snapshot's fold policy {pol!r} is not built in and code is never loaded from "
                        "a snapshot: stepping re-runs ops with 'mainline' (pass --policy FILE.py:CLASS "
                        "to use it)")
        cfg["policy"] = "mainline"
    for k, v in overrides.items():
        if v is not None:
            cfg[k] = v
    return cfg


def open_session(path: str, **overrides: Any) -> Loaded:
    """Open a snapshot as a session positioned at its start. With overrides
    (kernel, cpu, policy, ...) the session is a fresh run of the same ops under
    that configuration; the file's records are then only the expected side."""
    snap = open_snapshot(path)
    try:
        header = snap.header
        warnings = list(snap.warnings)
        kind = str(header.extra.get("machine", "scenario"))
        same = not any(v is not None for v in overrides.values())
        cfg = _machine_config(header, overrides, warnings)
        try:
            session = Session(machine_factory(kind, cfg), _OpsView(snap), name=header.scenario_name,
                              source=header.scenario_source, meta={"machine": kind, "config": cfg})
        except SnapshotError:
            raise
        except Exception as e:  # a header naming an unknown profile, a bad config value...
            raise SnapshotError(f"{path}: cannot build its machine: {e}") from None
        if same:
            # the file's records and checkpoints describe exactly this configuration
            cost = getattr(session.machine, "cycles_of", None) or session.cost_fn
            session.records = _RecordsView(snap, cost)  # type: ignore[assignment]
            for c in snap.checkpoint_numbers:
                if c:
                    session.checkpoints[c] = LAZY

            def loader(c: int) -> Any:
                try:
                    return session.machine.state_from_plain(snap.checkpoints[c])
                except SnapshotError:
                    raise
                except (KeyError, TypeError, ValueError) as e:
                    raise SnapshotError(f"{path}: checkpoint after op {c} is malformed: {e}") from None

            session.checkpoint_loader = loader
        session.warnings.extend(warnings)
        return Loaded(session, snap, header, warnings)
    except BaseException:
        snap.close()
        raise


@dataclass
class Divergence:
    op: int
    text: str
    what: str  # "digest", "counters"
    expected: Any
    found: Any
    process: str | None = None
    addr: int | None = None

    def message(self) -> str:
        where = f" at {self.addr:#x} in {self.process}" if self.addr is not None else ""
        if self.what == "digest":
            detail = (f"descriptor{where}: expected {self.expected:#018x}, found {self.found:#018x}"
                      if isinstance(self.expected, int) else f"page tables differ{where}")
        else:
            detail = ", ".join(f"{k} expected {a} found {b}" for k, (a, b) in list(self.expected.items())[:4])
        return f"op {self.op + 1} ({self.text}): {detail}"

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"op": self.op + 1, "text": self.text, "what": self.what,
                             "process": self.process,
                             "addr": None if self.addr is None else f"{self.addr:#x}"}
        if self.what == "digest":
            d["expected"] = f"{self.expected:#018x}" if isinstance(self.expected, int) else None
            d["found"] = f"{self.found:#018x}" if isinstance(self.found, int) else None
        else:
            d["counters"] = {k: {"expected": a, "found": b} for k, (a, b) in self.expected.items()}
        return d


@dataclass
class VerifyResult:
    ops_checked: int
    divergence: Divergence | None
    warnings: list[str]

    @property
    def ok(self) -> bool:
        return self.divergence is None


def verify(path: str, *, progress: Callable[[int, int], None] | None = None,
           interrupt: Callable[[], bool] | None = None, **overrides: Any) -> VerifyResult:
    """Re-execute every op of a snapshot (under overrides if given) and compare
    each op's digest and counters with the file. Stops at the first divergence."""
    loaded = open_session(path, **overrides)
    snap = loaded.snapshot
    try:
        expected_header = loaded.header
        fresh = loaded.session
        # a fresh run: drop anything taken from the file
        fresh.records = []
        fresh.checkpoints = {0: fresh.checkpoints.get(0) if fresh.checkpoints.get(0) is not LAZY
                             else fresh.machine.state()}
        if interrupt is not None:
            fresh.interrupt = interrupt
        n = len(snap.ops)
        for k in range(n):
            if interrupt is not None and interrupt():
                return VerifyResult(k, None, loaded.warnings + [f"interrupted after {k} ops"])
            fresh.run(until=k + 1, check_interrupt=False)
            exp = snap.ops[k]
            got = fresh.records[k]
            if bytes(exp.digest) != got.digest:
                div = Divergence(k, str(fresh.ops[k]), "digest", None, None)
                _locate(div, loaded, fresh, k, expected_header)
                return VerifyResult(k + 1, div, loaded.warnings)
            ec = dict(exp.counters)
            gc = _counters_plain(got.counters)
            if ec != gc:
                # the counters people read first, the per-function call counts last
                keys = sorted(set(ec) | set(gc), key=lambda c: (c.startswith("call:"), c))
                diff = {c: (ec.get(c, 0), gc.get(c, 0)) for c in keys if ec.get(c, 0) != gc.get(c, 0)}
                return VerifyResult(k + 1, Divergence(k, str(fresh.ops[k]), "counters", diff, None),
                                    loaded.warnings)
            if progress is not None and k % 256 == 0:
                progress(k, n)
        return VerifyResult(n, None, loaded.warnings)
    finally:
        snap.close()


def _locate(div: Divergence, loaded: Loaded, fresh: Session, k: int, header: SnapshotHeader) -> None:
    """Find the first differing descriptor after op k by re-running the
    snapshot's own configuration up to k + 1 (possible when its policy is
    built in)."""
    from engine.compare import first_differing_entry

    if any("not built in" in w for w in loaded.warnings):
        return
    try:
        original = open_session(loaded.snapshot.path)
    except SnapshotError:
        return
    try:
        exp_session = original.session
        exp_session.seek(Position(k + 1))
        fresh.seek(Position(k + 1))
        proc, addr, a, b = first_differing_entry(exp_session, fresh)
        div.process, div.addr, div.expected, div.found = proc, addr, a, b
    finally:
        original.snapshot.close()
