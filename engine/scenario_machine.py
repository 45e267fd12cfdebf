# SPDX-License-Identifier: GPL-2.0-only
"""One simulated system: core mm + arch + MMU/TLB + costs, driven one user
op at a time (the contract of docs/architecture.md).

    m = Machine(MachineConfig(granule="4K", kernel="v7.0", cpu="neoverse-n1", seed=1,
                              mthp={"64K": "always"}, policy="mainline"))
    m.apply(Op("mmap", {"name": "buf", "size": 1 << 20}))
    m.state() / m.restore(s) / m.digest() / m.process_list() / m.folio_info(pfn)

Everything random comes from ``random.Random(seed)`` held in the machine
(the memory-aging pattern today); nothing depends on time or hash order.
"""

from __future__ import annotations

import gc
import hashlib
import random
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from engine import limits
from engine.arch import DEFAULT_KERNEL, Arch, get_profile
from engine.cycles import cycles
from engine.errors import ScenarioError
from engine.events import COUNTER_NAMES, EventLog, count_events
from engine.granule import Granule
from engine.granule import granule as to_granule
from engine.hw.cpus import load_cpu
from engine.hw.mmu import MMU
from engine.hw.tlb import TLB
from engine.invariants import Violation, check_block, check_mm, check_tlb
from engine.mapping_summary import folded_blocks
from engine.mm.kernel import Kernel
from engine.mm.pagecache import PageCache
from engine.mm.physmem import (
    F_ANON,
    F_PAGECACHE,
    FOLIO_FLAG_NAMES,
    P_ANON_EXCLUSIVE,
    PhysMem,
    PhysMemState,
)
from engine.mm.process import Process
from engine.mm.swap import SwapDevice, SwapState
from engine.mm.thp import ThpPolicy
from engine.ops import Op
from engine.policy import MainlinePolicy, PolicyError, load_policy
from engine.pte import LAYOUTS, PTE_CONT, PTE_VALID
from engine.state.folios import FolioRegistry
from engine.verbs import VERBS, Verbs

CHECK_MODES = ("op", "end", "off")


@dataclass
class MachineConfig:
    granule: str = "4K"
    kernel: str = DEFAULT_KERNEL
    cpu: str = "neoverse-n1"
    seed: int = 1
    mthp: dict[str, str] = field(default_factory=dict)  # size -> always|inherit|madvise|never
    thp: str = "madvise"  # /sys/kernel/mm/transparent_hugepage/enabled
    policy: Any = "mainline"  # name, FILE.py:CLASS, or a FoldPolicy instance
    memory: int = 4 << 30
    aged: float = 0.0  # fraction of pages pinned at boot (0: fresh memory)
    swap: int = 4 << 30
    readahead: int = 128 << 10  # read_ahead_kb
    fault_around: int = 64 << 10  # fault_around_bytes
    check: str = "op"  # run the block/TLB invariant checks after every op, at the end, or never
    record: bool = True  # EventLog record mode (False: count mode)

    def summary(self) -> dict[str, Any]:
        pol = self.policy if isinstance(self.policy, str) else getattr(self.policy, "name", "?")
        return {"granule": self.granule, "kernel": self.kernel, "cpu": self.cpu, "seed": self.seed,
                "mthp": dict(self.mthp), "thp": self.thp, "policy": pol, "memory": self.memory,
                "aged": self.aged, "swap": self.swap, "readahead": self.readahead,
                "fault_around": self.fault_around, "check": self.check}


class Machine(Verbs):
    def __init__(self, config: MachineConfig | None = None, **overrides: Any):
        cfg = config or MachineConfig()
        for k, v in overrides.items():
            setattr(cfg, k, v)
        self.config = cfg
        try:
            self.g = to_granule(cfg.granule)
            self.profile = get_profile(cfg.kernel)
            self.cpu = load_cpu(cfg.cpu)
        except ValueError as e:
            raise ScenarioError(str(e)) from None
        if cfg.check not in CHECK_MODES:
            raise ScenarioError(f"check must be one of {', '.join(CHECK_MODES)}")
        if not isinstance(cfg.aged, (int, float)) or not 0.0 <= cfg.aged < 1.0:
            raise ScenarioError("aged fraction must be in [0, 1)")
        for name in limits.MAX_SIZES:
            value = getattr(cfg, name)
            if not isinstance(value, int) or value < 0:
                raise ScenarioError(f"{name} must be a size in bytes")
            limits.check_size(name, value)
        if not isinstance(cfg.seed, int):
            raise ScenarioError("seed must be an integer")
        self.layout = LAYOUTS[self.profile.layout]
        self.rng = random.Random(cfg.seed)
        self.log = EventLog(record=cfg.record)
        self.folios = FolioRegistry()
        self.arch = Arch(self.profile, self.cpu, self.g, self.folios, self.log)
        self.mmu = MMU(self.cpu, self.g, self.log)
        self.arch.tlbi_listener = self.mmu.tlb.invalidate
        g = self.g
        pm = PhysMem(g.page_shift, g.pmd_order, cfg.memory, self.folios, cfg.aged, self.rng)
        swap = SwapDevice(max(1, cfg.swap >> g.page_shift))
        pc = PageCache(g.page_shift, max(1, cfg.readahead >> g.page_shift))
        thp = ThpPolicy(g.page_shift, g.pmd_order)
        try:
            thp.set_top(cfg.thp)
            for size, setting in cfg.mthp.items():
                thp.set(size, setting)
        except ValueError as e:
            raise ScenarioError(str(e)) from None
        self.kernel = Kernel(self.arch, self.log, pm, swap, pc, thp)
        self.kernel.ctx.fault_around_pages = max(1, cfg.fault_around >> g.page_shift)
        try:
            self.policy = load_policy(cfg.policy)
        except ValueError as e:
            raise ScenarioError(str(e)) from None
        # The arch's own heuristic is MainlinePolicy exactly; None skips a call per set_ptes.
        self.arch.fold_policy = None if type(self.policy) is MainlinePolicy else self.policy
        self._frozen: tuple[Any, Any] = (None, None)  # last checkpointed pm and swap (for sharing)
        self._rng_state: Any = None  # the last checkpoint's rng state (for sharing)
        self.current: Process | None = self.kernel.new_process("p0")
        self.totals: Counter[str] = Counter()  # with the (float) "cycles"
        self.last_op: Counter[str] = Counter()
        self.nops = 0

    # --- the op loop ------------------------------------------------------------------
    @property
    def OP_VERBS(self) -> tuple[str, ...]:  # the machine contract's name (engine.contract)
        """The op verbs apply() knows: every registered scenario verb."""
        return tuple(VERBS)

    def apply(self, op: Op) -> Counter[str]:
        """Run one user op; returns its counters (also added to totals)."""
        handler = VERBS.get(op.verb)
        if handler is None:
            raise ScenarioError(f"unknown verb {op.verb!r}", op.line)
        log = self.log
        mark = len(log.buf)
        before = None
        if not log.recording:
            c0 = log.counts
            before = Counter(c0) if c0 else None
        written = log.written  # count mode: blocks the op writes
        if written is not None:
            written.clear()
        try:
            run = handler(self, op)  # validates, returns the mutating closure
        except ScenarioError as e:
            raise ScenarioError(e.message, op.line) from None
        # An op allocates millions of event tuples and no reference cycles:
        # the cyclic collector would only rescan them (a quarter of the time).
        gc_on = gc.isenabled()
        gc.disable()
        try:
            run()
        finally:
            if gc_on:
                gc.enable()
        self.nops += 1
        interval = getattr(self.policy, "scan_interval", 0)
        if interval and self.nops % interval == 0:
            self._policy_scan()
        if self.config.check == "op":
            self._check_invariants(mark if log.recording else None, written)
        if log.recording:
            counts = count_events(log.buf[mark:])
        elif before:
            counts = Counter(log.counts)
            counts.subtract(before)
            counts = +counts
        else:
            counts = +log.counts
        counts["ops"] = 1
        counts["cycles"] = cycles(counts, self.profile, self.cpu)  # type: ignore[assignment]  # a float (typeshed: int values)
        self.totals.update(counts)
        self.last_op = counts
        return counts

    def cycles_of(self, counters: Mapping[str, int]) -> float:
        """An op's cycles under this machine's kernel and CPU profiles (apply() puts them
        in its counters; a snapshot's op records are costed with this)."""
        return cycles(counters, self.profile, self.cpu)

    def set_interrupt_poll(self, poll: Callable[[], bool] | None) -> None:
        """Long ops call ``poll()`` every millisecond or so; when it returns
        True the op stops part way with OpInterrupted, leaving the machine
        mid-op (restore a state taken before the op, or discard the machine)."""
        self.kernel.ctx.interrupt_poll = poll
        self.kernel.ctx.ticks = 0

    def run(self, ops: Iterable[Op]) -> dict[str, float | int]:
        for op in ops:
            self.apply(op)
        return self.counters()

    def _policy_scan(self) -> None:
        log = self.log
        log.call("policy_scan", (self.policy.name,))
        mms = {id(p.mm): p.mm for p in self.kernel.procs if p.alive}
        for mm, addr in list(self.policy.scan(self)):
            live = mms.get(id(mm))
            if live is None or live is not mm or not 0 <= addr < 1 << 48 or addr % self.g.page_size:
                raise PolicyError(f"policy {self.policy.name}: scan() yielded ({type(mm).__name__}, "
                                  f"{addr:#x}): not the mm of a running process and a page-aligned "
                                  "user address")
            pte = live.pt.get(addr)
            if pte & PTE_VALID and not pte & PTE_CONT:
                self.arch.contpte_try_fold_slow(live, addr, pte)
        log.ret("policy_scan", None)

    def check_invariants(self) -> list[Violation]:
        out: list[Violation] = []
        for p in self.kernel.procs:
            if p.alive:
                out.extend(check_mm(self.arch, p.mm))
        out.extend(check_tlb(self.mmu.tlb))
        return out

    def _check_invariants(self, mark: int | None = None, written: set[int] | None = None) -> None:
        """Emit a violation event per broken invariant. With a mark (record
        mode) or the set of written blocks (count mode) only the blocks this
        op wrote are checked: a block nobody wrote cannot have changed."""
        if mark is None and written is None:
            found = self.check_invariants()
        else:
            if written is not None:
                blocks = set(written)
            else:
                mask = self.g.cont_pte_mask
                blocks = {ev[1] & mask for ev in self.log.buf[mark:] if ev[0] == "pte_write"}
            found = []
            arch = self.arch
            for p in self.kernel.procs:
                if p.alive and blocks:
                    tables = p.mm.pt.tables
                    for b in sorted(blocks):
                        t = tables.get(b >> self.g.pmd_shift)
                        if t is not None:
                            found.extend(check_block(arch, p.mm, t, p.mm.pt.index(b), b))
            found.extend(check_tlb(self.mmu.tlb))
        for v in found:
            self.log.emit(v.event())

    def finish(self) -> dict[str, float | int]:
        """End of a run: the 'end' invariant check, then the totals."""
        if self.config.check == "end":
            mark = len(self.log.buf)
            before = Counter(self.log.counts)
            self._check_invariants()
            if self.log.recording:
                self.totals.update(count_events(self.log.buf[mark:]))
            else:
                c = Counter(self.log.counts)
                c.subtract(before)
                self.totals.update(+c)
        return self.counters()

    # --- results ----------------------------------------------------------------------
    def cont_blocks(self) -> int:
        return sum(folded_blocks(p.mm.pt, self.g.cont_ptes) for p in self.kernel.procs)

    def counters(self) -> dict[str, float | int]:
        d: dict[str, float | int] = {k: self.totals.get(k, 0) for k in COUNTER_NAMES}
        d["cont_blocks"] = self.cont_blocks()
        d["cycles"] = round(float(self.totals.get("cycles", 0.0)), 1)
        return d

    def process_list(self) -> list[Process]:
        return list(self.kernel.procs)

    @property
    def tlb(self) -> TLB:
        return self.mmu.tlb

    def folio_info(self, pfn: int) -> dict[str, Any]:
        pm = self.kernel.pm
        if not pm.valid_pfn(pfn):
            raise ValueError(f"pfn {pfn:#x} is outside physical memory")
        head, nr = self.folios.folio_of(pfn)
        i = head - pm.base
        fl = pm.flags[i]
        return {
            "head": head, "order": nr.bit_length() - 1, "nr_pages": nr, "refcount": pm.ref[i],
            "mapcount": pm.lmap[i], "entire_mapcount": pm.entire.get(head, 0),
            "page_mapcount": pm.mapcount[pfn - pm.base],
            "anon": bool(fl & F_ANON), "file": bool(fl & F_PAGECACHE),
            "anon_exclusive": bool(pm.flags[pfn - pm.base] & P_ANON_EXCLUSIVE),
            "index": pm.index[i], "mapping": pm.mapping[i],
            "flags": [name for bit, name in FOLIO_FLAG_NAMES if fl & bit],
            "free": pm.ref[i] == 0,
        }

    # --- checkpoints --------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """A checkpoint. Page tables are shared copy-on-write with the live
        machine; physical-memory and swap maps are frozen into chunks shared
        with the previous checkpoint where unchanged (engine.state.chunks)."""
        k = self.kernel.ctx
        reg = self.folios.clone()
        pm = k.pm.freeze(self._frozen[0])
        swap = k.swap.freeze(self._frozen[1])
        self._frozen = (pm, swap)
        # the generator's state is 625 ints: share the last checkpoint's tuple while
        # nothing has drawn from it (most ops do not), as the chunks above are shared
        rng = self.rng.getstate()
        if rng == self._rng_state:
            rng = self._rng_state
        else:
            self._rng_state = rng
        return {
            "folios": reg, "pm": pm, "pc": k.pc.clone(), "swap": swap,
            "thp": k.thp.clone(), "procs": [p.clone() for p in k.procs], "ids": dict(k.ids),
            "tlb": self.mmu.tlb.clone_state(), "rng": rng,
            "totals": Counter(self.totals), "nops": self.nops,
            "current": self.current.pid if self.current else 0,
        }

    def restore(self, st: dict[str, Any]) -> None:
        k = self.kernel.ctx
        self.folios.assign(st["folios"])
        k.pm = st["pm"].thaw(self.folios)
        k.pc = st["pc"].clone()
        k.swap = st["swap"].thaw()
        self._frozen = (st["pm"], st["swap"])
        k.thp = st["thp"].clone()
        k.procs = [p.clone() for p in st["procs"]]
        k.ids = dict(st["ids"])
        k.vmas_changed()
        k.ubc_pending = False
        self.mmu.tlb.restore_state(st["tlb"])
        self.rng.setstate(st["rng"])
        self.totals = Counter(st["totals"])
        self.nops = st["nops"]
        self.current = next((p for p in k.procs if p.pid == st["current"]), None)

    def state_to_plain(self, st: dict[str, Any], joined: bool = False) -> dict[str, Any]:
        """msgpack-able form of a checkpoint. Big per-page maps are lists of
        chunks (one bytes value each with ``joined``, as digest() hashes them)."""
        version, internal, gauss = st["rng"]
        return {
            "folios": st["folios"].to_plain(), "pm": st["pm"].to_plain(joined),
            "pc": st["pc"].to_plain(), "swap": st["swap"].to_plain(joined), "thp": st["thp"].to_plain(),
            "procs": [p.to_plain() for p in st["procs"]], "ids": dict(st["ids"]),
            "tlb": TLB.state_to_plain(st["tlb"]), "rng": [version, list(internal), gauss],
            "totals": {k: v for k, v in sorted(st["totals"].items())}, "nops": st["nops"],
            "current": st["current"],
        }

    def state_from_plain(self, d: dict[str, Any]) -> dict[str, Any]:
        reg = FolioRegistry.from_plain(d["folios"])
        version, internal, gauss = d["rng"]
        return {
            "folios": reg, "pm": PhysMemState.from_plain(d["pm"]), "pc": PageCache.from_plain(d["pc"]),
            "swap": SwapState.from_plain(d["swap"]), "thp": _thp_from(d["thp"], self.g),
            "procs": [Process.from_plain(p, self.g) for p in d["procs"]],
            "ids": {str(k): int(v) for k, v in d["ids"].items()},
            "tlb": TLB.state_from_plain(d["tlb"]), "rng": (int(version), tuple(internal), gauss),
            "totals": Counter(d["totals"]), "nops": int(d["nops"]), "current": int(d["current"]),
        }

    def digest(self) -> str:
        """Hash of everything the model's future depends on (not the counters)."""
        plain = self.state_to_plain(self.state(), joined=True)
        plain.pop("totals")
        plain.pop("nops")
        h = hashlib.blake2b(digest_size=16)
        _feed(h, plain)
        return h.hexdigest()


def _thp_from(d: dict[str, Any], g: Granule) -> ThpPolicy:
    t = ThpPolicy(g.page_shift, g.pmd_order)
    t.load_plain(d)
    return t


def _feed(h: Any, x: Any) -> None:  # h: a hashlib hash object
    if isinstance(x, dict):
        h.update(b"{")
        for k in sorted(x):
            _feed(h, k)
            _feed(h, x[k])
        h.update(b"}")
    elif isinstance(x, (list, tuple)):
        h.update(b"[")
        for v in x:
            _feed(h, v)
        h.update(b"]")
    elif isinstance(x, (bytes, bytearray)):
        h.update(b"b%d:" % len(x))
        h.update(x)
    else:
        h.update(repr(x).encode())
        h.update(b";")
