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

import gc
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain, islice
from operator import attrgetter, itemgetter, methodcaller
from typing import Any, overload

from engine.arch.profiles import DEFAULT_KERNEL
from engine.capture.session import starting_from
from engine.contract import MachineContract, MachineState, PlainState
from engine.hw.cpus import CPUS, CpuProfile, cpu_to_plain, load_cpu
from engine.machine_kinds import machine_factory
from engine.ops import Op
from engine.queries import first_differing_entry
from engine.scenario_machine import Machine
from engine.session import LAZY, OpRecord, Position, Session, tables_digest
from engine.text import escape_controls
from snapshots.errors import SnapshotCorruptError, SnapshotError, SnapshotFormatError, display_name
from snapshots.header import SnapshotHeader
from snapshots.reader import Snapshot, open_snapshot
from snapshots.writer import save_snapshot

BUILTIN_POLICY_NAMES = ("mainline", "never", "any-entry", "scan", "kernel", "default", "any")


def _counters_plain(counters: dict[str, Any]) -> dict[str, int]:
    # cycles are recomputed from the counters (deterministic); call:* counts
    # are kept: they are what the op log expands into.
    return {k: int(v) for k, v in counters.items() if isinstance(v, int) and not isinstance(v, bool)}


_OPS_CHUNK = 4096  # ops converted at a time when saving


def _converted(cache: dict[int, tuple[Any, Any]], objs: list[Any],
               conv: Callable[[Any], Any]) -> Iterator[Any]:
    """``conv(o)`` for each of ``objs``, converting each distinct object once. The cache (id ->
    (object, converted)) holds the objects themselves, so an id() is never reused while in it."""
    if len(cache) >= 65536:
        cache.clear()
    ids = list(map(id, objs))
    distinct = dict(zip(ids, objs, strict=True))
    for i in distinct.keys() - cache.keys():
        cache[i] = (distinct[i], conv(distinct[i]))
    return map(itemgetter(1), map(cache.__getitem__, ids))


def _embedded_cpu(cpu: Any) -> tuple[str, Any]:
    """(the header's cpu name, the config's cpu): a user's CPU profile (a TOML
    path or a CpuProfile) goes into the file by value, so the snapshot is
    self-contained and no reader ever opens a path named in it."""
    if isinstance(cpu, str) and cpu in CPUS:
        return cpu, cpu
    if isinstance(cpu, dict):
        return str(cpu.get("name", "")), cpu
    prof = cpu if isinstance(cpu, CpuProfile) else load_cpu(cpu)
    if prof.name in CPUS and CPUS[prof.name] == prof:
        return prof.name, prof.name
    return prof.name, cpu_to_plain(prof)


def session_header(session: Session, created: str = "") -> SnapshotHeader:
    meta = session.meta
    cfg = dict(meta.get("config", {}))
    policy = cfg.get("policy") or "mainline"
    cpu_name, cfg["cpu"] = _embedded_cpu(cfg.get("cpu", "neoverse-n1"))
    extra = {"machine": meta.get("machine", "scenario"), "config": cfg,
             "totals": {k: (round(v, 3) if isinstance(v, float) else int(v))
                        for k, v in sorted(session.totals().items()) if not k.startswith("call:")}}
    if isinstance(meta.get("ui"), dict):  # where the TUI was (position, breakpoints): plain data
        extra["ui"] = meta["ui"]
    return SnapshotHeader(
        kernel=str(cfg.get("kernel", DEFAULT_KERNEL)), granule=str(cfg.get("granule", "4K")),
        cpu=cpu_name, policy=str(policy), seed=int(cfg.get("seed", 1)),
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

    # Ops come from the scenario's iterator (indexing re-expands its repeat
    # blocks for every op), and records share equal counter dicts, as op
    # lists repeat Op objects: each distinct object is converted once. A
    # chunk at a time, mapped and chained at C speed: a Python loop (or a
    # generator) per op was a second or more of a million-op save.
    plain_counters: dict[int, tuple[Any, Any]] = {}
    plain_ops: dict[int, tuple[Any, Any]] = {}
    op_iter = iter(session.ops)

    def chunk(k: int) -> Iterator[tuple[Any, Any, Any]]:
        if progress is not None:
            progress("ops", k, n)
        ops = list(islice(op_iter, min(_OPS_CHUNK, n - k)))
        recs = session.records[k:k + len(ops)]
        counters = list(map(attrgetter("counters"), recs))
        return zip(_converted(plain_ops, ops, methodcaller("to_plain")),
                   _converted(plain_counters, counters, _counters_plain),
                   map(attrgetter("digest"), recs), strict=True)

    records = session.records
    # the live session checkpoints densely for quick seeks; the file keeps them spaced
    cps = [c for c in session.store.saved(lambda j: records[j].n_events) if c <= n]

    class _Plain(Mapping[int, PlainState]):  # converted one at a time: big sessions do not double in memory
        def __iter__(self) -> Iterator[int]:
            return iter(cps)

        def __getitem__(self, c: int) -> PlainState:
            return m.state_to_plain(session.checkpoint(c))

        def __len__(self) -> int:
            return len(cps)

    # Saving allocates millions of short-lived tuples, dicts and lists and no reference cycles:
    # in a big session's heap the cyclic collector would rescan every record and checkpoint
    # again and again (seconds of a million-op save), as in Machine.apply.
    gc_on = gc.isenabled()
    gc.disable()
    try:
        save_snapshot(path, session_header(session, created),
                      chain.from_iterable(map(chunk, range(0, n, _OPS_CHUNK))), _Plain())
    finally:
        if gc_on:
            gc.enable()


# A counter is a count: a non-negative integer below this (the JSON output and
# the cost arithmetic stay exact and finite).
MAX_COUNTER = 1 << 62
# Files with up to this many ops have every op record checked when opened (about
# a second for the largest); bigger ones are checked as each record is first read.
EAGER_CHECK_OPS = 1 << 16
DIGEST_BYTES = 16
_VERB_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_-:.")


def checked_op(snap: Snapshot, i: int, plain: Any) -> Op:
    """Op i of a file as an Op, or SnapshotCorruptError naming the file and the op.
    Its text is made safe to print (control characters escaped)."""
    try:
        op = Op.from_plain(plain)
    except (ValueError, TypeError, AttributeError) as e:
        detail = escape_controls(str(e))
        raise SnapshotCorruptError(f"{snap.name}: op {i + 1} is malformed: {detail}") from None
    if not op.verb or len(op.verb) > 64 or not set(op.verb) <= _VERB_CHARS:
        raise SnapshotCorruptError(f"{snap.name}: op {i + 1} has a malformed verb "
                                   f"{escape_controls(op.verb)[:64]!r}")
    if type(op.line) is not int or not 0 <= op.line < 1 << 32:
        raise SnapshotCorruptError(f"{snap.name}: op {i + 1} has a malformed line number")
    for k, v in op.args.items():
        if type(v) is int and not -(1 << 64) < v < 1 << 64:
            raise SnapshotCorruptError(f"{snap.name}: op {i + 1}: argument {escape_controls(k)[:40]} is out "
                                       "of range")
    safe = escape_controls(op.text)
    if safe != op.text:
        op = Op(op.verb, op.args, op.line, safe)
    return op


def checked_counters(snap: Snapshot, i: int, counters: Any) -> dict[str, int]:
    """Op i's counters: names to non-negative integers (never NaN, infinite,
    negative or huge), or SnapshotCorruptError naming the file, the op and the counter."""
    if not isinstance(counters, dict):
        raise SnapshotCorruptError(f"{snap.name}: op {i + 1}: its counters are not a map")
    out: dict[str, int] = {}
    for k, v in counters.items():
        if type(v) is not int or not 0 <= v < MAX_COUNTER:
            raise SnapshotCorruptError(f"{snap.name}: op {i + 1}: counter {escape_controls(str(k))[:60]} is "
                                       f"{escape_controls(repr(v))[:40]}, not a count (a non-negative "
                                       f"integer below 2^62)")
        out[k] = v
    return out


def checked_digest(snap: Snapshot, i: int, digest: Any) -> bytes:
    if type(digest) is not bytes or len(digest) != DIGEST_BYTES:
        raise SnapshotCorruptError(f"{snap.name}: op {i + 1}: its state digest is not {DIGEST_BYTES} bytes "
                                   f"({type(digest).__name__} of length {len(digest)})")
    return digest


class _OpsView(Sequence[Op]):
    """The snapshot's ops as Op objects, converted on demand."""

    def __init__(self, snap: Snapshot):
        self.snap = snap
        self._cache: dict[int, Op] = {}

    def __len__(self) -> int:
        return len(self.snap.ops)

    @overload
    def __getitem__(self, i: int) -> Op: ...

    @overload
    def __getitem__(self, i: slice) -> list[Op]: ...

    def __getitem__(self, i: int | slice) -> Op | list[Op]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        op = self._cache.get(i)
        if op is None:
            op = checked_op(self.snap, i, self.snap.ops[i].op)
            if len(self._cache) > 65536:
                self._cache.clear()
            self._cache[i] = op
        return op


class _RecordsView:
    """The session's per-op records backed by the snapshot; appends go to a tail."""

    def __init__(self, snap: Snapshot, cost_fn: Callable[[Mapping[str, int]], float]):
        self.snap = snap
        self.cost_fn = cost_fn
        self.n = len(snap.ops)
        self.tail: list[OpRecord] = []
        self._cache: dict[int, OpRecord] = {}

    def __len__(self) -> int:
        return self.n + len(self.tail)

    def append(self, rec: OpRecord) -> None:
        self.tail.append(rec)

    @overload
    def __getitem__(self, i: int) -> OpRecord: ...

    @overload
    def __getitem__(self, i: slice) -> list[OpRecord]: ...

    def __getitem__(self, i: int | slice) -> OpRecord | list[OpRecord]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if i >= self.n:
            return self.tail[i - self.n]
        r = self._cache.get(i)
        if r is None:
            rec = self.snap.ops[i]
            counters = checked_counters(self.snap, i, rec.counters)
            r = OpRecord(counters, float(self.cost_fn(counters)), checked_digest(self.snap, i, rec.digest),
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


def _machine_config(path: str, header: SnapshotHeader, overrides: dict[str, Any],
                    warnings: list[str]) -> dict[str, Any]:
    name = display_name(path)
    if "config" in header.extra and not isinstance(header.extra["config"], dict):
        raise SnapshotFormatError(f"{name}: its machine configuration is not a map")
    cfg = dict(header.extra.get("config", {}))
    # one source of truth: the header and the configuration must agree, or the file is refused
    for k in ("kernel", "granule", "cpu", "seed"):
        if k not in cfg:
            cfg[k] = getattr(header, k)
            continue
        v = cfg[k]
        said = v.get("name") if k == "cpu" and isinstance(v, dict) else v
        if k == "seed":
            bad = said != header.seed
        else:
            bad = (not isinstance(said, (str, int)) or isinstance(said, bool)
                   or str(said) != getattr(header, k))
        if bad:
            raise SnapshotFormatError(
                f"{name}: its header says {k} {escape_controls(str(getattr(header, k)))!s} but its "
                f"configuration says {escape_controls(repr(said))[:80]}: refusing a file that "
                "contradicts itself")
    cpu = cfg["cpu"]
    if overrides.get("cpu") is None and isinstance(cpu, str) and cpu not in CPUS:
        # a snapshot is self-contained: it may embed a profile, never name a file to open
        raise SnapshotFormatError(
            f"{name}: names the CPU profile {escape_controls(cpu)[:120]!r}, which is not built in; ptlab "
            "never opens a path named in a snapshot (pass --cpu FILE to supply the profile yourself)")
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


def check_records(snap: Snapshot) -> None:
    """Every op record checked now (op, counters, digest): a bad one is one
    SnapshotError line at open, not an error met mid-way."""
    for k, rec in enumerate(snap.ops.iter_range(0, len(snap.ops))):
        checked_op(snap, k, rec.op)
        checked_counters(snap, k, rec.counters)
        checked_digest(snap, k, rec.digest)


def open_session(path: str, *, check_all: bool = False, **overrides: Any) -> Loaded:
    """Open a snapshot as a session positioned at its start. With overrides
    (kernel, cpu, policy, ...) the session is a fresh run of the same ops under
    that configuration; the file's records are then only the expected side.
    Files of up to EAGER_CHECK_OPS ops have every op record checked on
    opening; ``check_all`` checks every record of a bigger file too (the TUI
    reads records from widgets that cannot stop in one line, so it asks for
    it: about a second per 65,536 ops)."""
    snap = open_snapshot(path)
    try:
        header = snap.header
        warnings = list(snap.warnings)
        kind = str(header.extra.get("machine", "scenario"))
        same = not any(v is not None for v in overrides.values())
        cfg = _machine_config(path, header, overrides, warnings)
        try:
            # a name from a file is shown in terminals and the TUI: control characters escaped
            session = Session(machine_factory(kind, cfg), _OpsView(snap),
                              name=escape_controls(header.scenario_name), source=header.scenario_source,
                              meta={"machine": kind, "config": cfg})
        except SnapshotError:
            raise
        except Exception as e:  # a header naming an unknown profile, a bad config value...
            raise SnapshotError(f"{path}: cannot build its machine: {e}") from None
        if kind == "capture":
            _capture_start(session, snap, cfg)
        elif kind == "scenario-from":
            _scenario_start(session, snap, cfg)
        if check_all or len(snap.ops) <= EAGER_CHECK_OPS:
            check_records(snap)
        if same:
            # the file's records and checkpoints describe exactly this configuration
            session.records = _RecordsView(snap, session.machine.cycles_of)
            for c in snap.checkpoint_numbers:
                if c:
                    session.checkpoints[c] = LAZY

            session.checkpoint_loader = _TrustedCheckpoints(session, snap)
        session.warnings.extend(warnings)
        return Loaded(session, snap, header, warnings)
    except BaseException:
        snap.close()
        raise


def _capture_start(session: Session, snap: Snapshot, cfg: dict[str, Any]) -> None:
    """A captured process's session starts from the file's checkpoint 0, which
    must hash to the starting digest its header records."""
    if 0 not in snap.checkpoint_numbers:
        raise SnapshotCorruptError(f"{snap.name}: a captured process without its starting state "
                                   "(checkpoint 0)")
    prov = cfg.get("capture")
    want = prov.get("start_digest") if isinstance(prov, dict) else None
    st = decode_checkpoint(session.machine, snap, 0)
    try:
        session.machine.restore(st)
    except Exception as e:  # noqa: BLE001 - a hostile state the model cannot restore
        raise SnapshotCorruptError(f"{snap.name}: the captured starting state cannot be restored "
                                   f"({escape_controls(type(e).__name__)})") from None
    if not isinstance(want, str) or session.machine.digest() != want:
        raise SnapshotCorruptError(f"{snap.name}: the captured starting state (checkpoint 0) does not match "
                                   "the digest its header records")
    session.make_machine = starting_from(cfg, st)
    session.checkpoints[0] = session.machine.state()


def _scenario_start(session: Session, snap: Snapshot, cfg: dict[str, Any]) -> None:
    """A scenario run --from a saved state starts from the file's checkpoint 0,
    which must hash (the whole machine state) to the digest its header records:
    a forged start is refused, not run."""
    start = cfg.get("start")
    want = start.get("digest") if isinstance(start, dict) else None
    if not isinstance(want, str):
        raise SnapshotFormatError(f"{snap.name}: a scenario run from a saved state, without the digest of "
                                  "that state")
    for key in ("kernel", "granule"):
        if str(cfg.get(key)) != str(getattr(snap.header, key)):
            raise SnapshotFormatError(f"{snap.name}: starts from a saved state built for {key} "
                                      f"{escape_controls(str(getattr(snap.header, key)))}; it cannot run "
                                      f"under another (only --cpu and --policy can change)")
    if 0 not in snap.checkpoint_numbers:
        raise SnapshotCorruptError(f"{snap.name}: a scenario run from a saved state without that state "
                                   "(checkpoint 0)")
    st = decode_checkpoint(session.machine, snap, 0)
    try:
        session.machine.restore(st)
        got = session.machine.digest()
    except Exception as e:  # noqa: BLE001 - a hostile state the model cannot restore
        raise SnapshotCorruptError(f"{snap.name}: the starting state cannot be restored "
                                   f"({escape_controls(type(e).__name__)})") from None
    if got != want:
        raise SnapshotCorruptError(f"{snap.name}: the starting state (checkpoint 0) does not match the "
                                   "digest its header records")
    empty = session.make_machine

    def make() -> MachineContract:
        m = empty()
        m.restore(st)
        return m

    session.make_machine = make
    session.checkpoints[0] = session.machine.state()


def decode_checkpoint(machine: MachineContract, snap: Snapshot, c: int) -> MachineState:
    """Checkpoint c of the file as a machine state, or SnapshotError naming the file."""
    try:
        plain = snap.checkpoints[c]
    except SnapshotError:
        raise
    except (KeyError, IndexError):
        raise SnapshotCorruptError(f"{snap.name}: has no checkpoint after op {c}") from None
    try:
        return machine.state_from_plain(plain)
    except SnapshotError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError, RecursionError,
            MemoryError) as e:
        detail = escape_controls(f"{type(e).__name__}: {e}")[:160]
        raise SnapshotCorruptError(f"{snap.name}: the checkpoint after op {c} is malformed "
                                   f"({detail})") from None


class _TrustedCheckpoints:
    """The loader of a file's checkpoints: a checkpoint is used only if it
    agrees with the op log (restored, its page tables hash to the digest the
    file records after that op). One that is damaged, malformed or forged is
    replaced by re-executing the ops since the previous good checkpoint, and
    the session's warnings say so."""

    def __init__(self, session: Session, snap: Snapshot):
        self.session = session
        self.snap = snap
        self._scratch: MachineContract | None = None  # a machine to restore into, made on first need

    def _digest(self, st: Any) -> bytes:
        """Session.op_digest() of the machine restored to st."""
        s = self.session
        if isinstance(s.machine, Machine):  # its process list is the state's, in order: no restore
            return tables_digest(st["procs"])
        if self._scratch is None:
            self._scratch = s.make_machine()
        self._scratch.restore(st)
        return tables_digest(self._scratch.process_list())

    def __call__(self, c: int) -> MachineState:
        s = self.session
        problem = ""
        try:
            st = decode_checkpoint(s.machine, self.snap, c)
            want = s.records[c - 1].digest
            if self._digest(st) == want:
                return st
            problem = ("does not match the op log (its page tables differ from the digest recorded "
                       "after that op)")
        except SnapshotError as e:
            problem = f"cannot be used ({str(e).removeprefix(f'{self.snap.name}: ')})"
        scratch = Session(s.make_machine, s.ops, checkpoint_ops=1 << 62, checkpoint_events=1 << 62)
        prev = max(k for k in s.checkpoints if k < c)
        note = (f"{self.snap.name}: the checkpoint after op {c} {problem}; ops {prev + 1}-{c} are "
                "re-executed instead")
        if note not in s.warnings:
            s.warnings.append(note)
        scratch.records = s.records  # replayed, not recorded
        scratch.machine.restore(s.checkpoint(prev))
        scratch.k = prev
        while scratch.k < c:
            scratch._advance(record=False)
        return scratch.machine.state()


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
        where = f" at {self.addr:#x} in {escape_controls(str(self.process))}" if self.addr is not None else ""
        if self.what == "record":  # a record that cannot be read or does not check out
            return str(self.expected)
        if self.what == "checkpoint":
            if isinstance(self.expected, int) and isinstance(self.found, int):
                detail = (f"descriptor{where}: the file has {self.expected:#018x}, re-execution gives "
                          f"{self.found:#018x}")
            elif self.addr is not None:
                detail = f"process {escape_controls(str(self.process))} exists on one side only"
            else:
                detail = f"differs from re-execution in its {self.expected}"
            return f"the checkpoint after op {self.op} ({self.text}) is forged or wrong: {detail}"
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
        if self.what in ("digest", "checkpoint"):
            d["expected"] = f"{self.expected:#018x}" if isinstance(self.expected, int) else None
            d["found"] = f"{self.found:#018x}" if isinstance(self.found, int) else None
            if self.what == "checkpoint":
                d["op"] = self.op  # the checkpoint is the state after this many ops
                d["message"] = self.message()
        elif self.what == "record":
            d["message"] = self.message()
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
        same = not any(v is not None for v in overrides.values())
        # every record is read and checked (CRC, schema) before anything is trusted
        try:
            snap.verify()
        except SnapshotError as e:
            return VerifyResult(0, Divergence(0, "", "record", str(e), None), loaded.warnings)
        if snap.truncated:
            why = snap.warnings[-1] if snap.warnings else f"{snap.name}: the file is truncated"
            return VerifyResult(0, Divergence(0, "", "record", f"damaged: {why}", None), loaded.warnings)
        # a fresh run: drop anything taken from the file
        fresh.records = []
        fresh.checkpoints = {0: fresh.checkpoints.get(0) if fresh.checkpoints.get(0) is not LAZY
                             else fresh.machine.state()}
        if interrupt is not None:
            fresh.interrupt = interrupt
        n = len(snap.ops)
        file_cps = set(snap.checkpoint_numbers) if same else set()
        for k in range(n):
            if interrupt is not None and interrupt():
                return VerifyResult(k, None, loaded.warnings + [f"interrupted after {k} ops"])
            if k in file_cps and k:
                fresh.run(until=k, check_interrupt=False)
                div = _check_checkpoint(snap, fresh, k)
                if div is not None:
                    return VerifyResult(k, div, loaded.warnings)
            fresh.run(until=k + 1, check_interrupt=False)
            try:
                exp_digest = checked_digest(snap, k, snap.ops[k].digest)
                ec = checked_counters(snap, k, snap.ops[k].counters)
            except SnapshotError as e:
                return VerifyResult(k, Divergence(k, "", "record", str(e), None), loaded.warnings)
            got = fresh.records[k]
            if exp_digest != got.digest:
                div = Divergence(k, str(fresh.ops[k]), "digest", None, None)
                _locate(div, loaded, fresh, k, expected_header)
                return VerifyResult(k + 1, div, loaded.warnings)
            gc = _counters_plain(got.counters)
            # counters compare by value: a counter absent on one side is 0 there
            keys = sorted(set(ec) | set(gc), key=lambda c: (c.startswith("call:"), c))
            diff = {c: (ec.get(c, 0), gc.get(c, 0)) for c in keys if ec.get(c, 0) != gc.get(c, 0)}
            if diff:
                return VerifyResult(k + 1, Divergence(k, str(fresh.ops[k]), "counters", diff, None),
                                    loaded.warnings)
            if progress is not None and k % 256 == 0:
                progress(k, n)
        if n in file_cps and n:
            div = _check_checkpoint(snap, fresh, n)
            if div is not None:
                return VerifyResult(n, div, loaded.warnings)
        return VerifyResult(n, None, loaded.warnings)
    finally:
        snap.close()


def _check_checkpoint(snap: Snapshot, fresh: Session, k: int) -> Divergence | None:
    """Compare the file's checkpoint after op k with the re-executed state
    (fresh, at op k): None when they are the same state."""
    text = str(fresh.ops[k - 1])
    scratch = Session(fresh.make_machine, fresh.ops, checkpoint_ops=1 << 62, checkpoint_events=1 << 62)
    try:
        st = decode_checkpoint(scratch.machine, snap, k)
        scratch.machine.restore(st)
    except SnapshotError as e:
        return Divergence(k, text, "record", str(e), None)
    except Exception as e:  # noqa: BLE001 - a hostile state the model cannot even restore
        return Divergence(k, text, "record", f"{snap.name}: the checkpoint after op {k} cannot be restored "
                          f"({escape_controls(type(e).__name__ + ': ' + str(e))[:160]})", None)
    fresh._reload(k)
    proc, addr, a, b = first_differing_entry(scratch, fresh)
    if proc is not None:
        return Divergence(k, text, "checkpoint", a, b, proc, addr)
    if scratch.machine.digest() != fresh.machine.digest():
        mine = scratch.machine.state_to_plain(scratch.machine.state())
        theirs = fresh.machine.state_to_plain(fresh.machine.state())
        parts = [key for key in sorted(set(mine) | set(theirs))
                 if key not in ("totals", "nops") and mine.get(key) != theirs.get(key)]
        return Divergence(k, text, "checkpoint", ", ".join(parts) or "state", None)
    return None


def _locate(div: Divergence, loaded: Loaded, fresh: Session, k: int, header: SnapshotHeader) -> None:
    """Find the first differing descriptor after op k by re-running the
    snapshot's own configuration up to k + 1 (possible when its policy is
    built in)."""
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
