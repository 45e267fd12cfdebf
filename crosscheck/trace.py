# SPDX-License-Identifier: GPL-2.0-only
"""The real kernel's side: tracefs text and the guest's pagemap dump →
one :class:`~crosscheck.observe.OpObservation` per op.

The guest records (see runtime.c and :mod:`crosscheck.guest_script`):

* ``tracing_mark_write: ptlab T op K`` / ``dump K`` / ``done K`` /
  ``pid J PID`` / ``error K MSG`` / ``end`` markers;
* kprobe events ``ptlab/c*`` on every out-of-line ``contpte_*`` function
  and kretprobe events ``ptlab/r*`` on their returns (only the outermost
  calls are kept: which contpte.c functions the compiler inlines into each
  other differs per call site), each entry with ``a1`` (x1: the address, for the functions that take one) and
  ``a3`` (x3: contpte_convert's new pte);
* ``ptlab/fault`` on ``handle_mm_fault(vma, address, flags)``;
* ``ptlab/vmnp`` on ``vm_normal_page(vma, addr, pte)``, enabled only while
  the processes read their own smaps after each op.

Events of other tasks (the controller, kernel threads) are dropped by pid;
contpte calls and faults at addresses outside the scenario's mappings (the
guest program's own stack and data) are dropped by address.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from crosscheck.observe import NO_ADDR, OpObservation, PageInfo, collapse_repeats
from crosscheck.translate import Plan, engine_addr

LINE = re.compile(r"^\s*(?P<comm>.*?)-(?P<pid>\d+)\s+(?:\(\s*[-\d]+\)\s+)?\[\d+\]\s+\S+\s+[\d.]+:\s+"
                  r"(?P<event>[\w]+):\s+(?P<rest>.*)$")
PROBE = re.compile(r"^\((?P<sym>[\w.]+)\+0x[0-9a-f]+/0x[0-9a-f]+\)\s*(?P<args>.*)$")
RETPROBE = re.compile(r"^\([\w.]+\+0x[0-9a-f]+/0x[0-9a-f]+ <- (?P<sym>[\w.]+)\)")
ARG = re.compile(r"(\w+)=(0x[0-9a-f]+|-?\d+)")
FAULT_FLAG_WRITE = 1 << 0
# contpte functions whose first argument is a vma (the mm is vma->vm_mm, at +16);
# the others take an mm first, but contpte_ptep_get[_lockless], which take a ptep
VMA_FIRST = frozenset({"contpte_ptep_test_and_clear_young", "contpte_ptep_clear_flush_young",
                       "contpte_clear_young_dirty_ptes", "contpte_ptep_set_access_flags",
                       "contpte_test_and_clear_young_ptes", "contpte_clear_flush_young_ptes"})
CONT_PTES = {4096: 16, 16384: 128, 65536: 32}
# REREAD: consecutive outermost contpte_ptep_get() of one entry count once, on both
# sides: zap_pte_range() reads an entry, and when need_resched() is set (a timer
# tick: timing, not the op) breaks out and reads it again after cond_resched().
# A __contpte_try_fold() that folds nothing is not compared, on either side: the
# inline contpte_try_fold() calls it when the entry's pfn is the last of an aligned
# block (the palign test), which depends on where the allocator put the folio --
# physical addresses as numbers, which the comparison never uses. The folds
# themselves (a try that converts) and every convert are compared.
KPF_ZERO_PAGE = 24


class TraceError(ValueError):
    """The guest's trace cannot be read as a run of this plan."""


@dataclass
class KernelRun:
    """One target's observations from the guest."""

    ops: list[OpObservation]
    pids: dict[int, int] = field(default_factory=dict)  # pid -> scenario process index
    completed: bool = False  # the 'end' marker was seen
    error: str = ""


def _base(sym: str) -> str:
    return sym.split(".", 1)[0]  # contpte_convert.isra.0 -> contpte_convert


def parse_trace(lines: Iterable[str], target: int, plan: Plan) -> KernelRun:
    """Split the trace on the target's markers into per-op observations."""
    n = len(plan.ops)
    ops = [OpObservation() for _ in range(n)]
    pids: dict[int, int] = {}
    k = -1
    phase = ""  # "op" or "dump"
    done = False
    error = ""
    ranges = _ranges(plan)
    mine = f"ptlab {target} "
    lines = list(lines)
    mms = _mm_map(lines, target, n)
    block = CONT_PTES.get(plan.granule, 16) * plan.granule
    depth: dict[int, int] = {}  # pid -> contpte calls in progress
    trying: dict[int, tuple[int, int, bool]] = {}  # pid -> (op, call index, folded) of a fold attempt
    last_get: dict[int, tuple] = {}  # op -> the last outermost ptep_get: (name, process, ptep)
    for raw in lines:
        m = LINE.match(raw)
        if not m:
            continue
        event, rest = m["event"], m["rest"]
        if event == "tracing_mark_write":
            if not rest.startswith(mine):
                if rest.startswith("ptlab "):
                    phase = ""  # another target's markers
                continue
            words = rest[len(mine):].split()
            if not words:
                continue
            what = words[0]
            if what == "pid" and len(words) >= 3:
                pids[int(words[2])] = int(words[1])
            elif what == "op" and len(words) >= 2:
                k, phase = int(words[1]), "op"
            elif what == "dump":
                phase = "dump"
            elif what == "done":
                phase = ""
            elif what == "error" and len(words) >= 2:
                kk = int(words[1])
                if 0 <= kk < n:
                    ops[kk].error = " ".join(words[2:])
                error = f"op {kk}: {' '.join(words[2:])}"
            elif what == "end":
                done = True
                phase = ""
            continue
        if not phase or not 0 <= k < n:
            continue
        pid = int(m["pid"])
        j = pids.get(pid)
        if j is None:
            continue
        if event.startswith("r") and RETPROBE.match(rest):
            depth[pid] = max(0, depth.get(pid, 0) - 1)
            tried = trying.get(pid)
            if tried is not None and depth[pid] == 0:
                del trying[pid]
                kk, idx, folded = tried
                if not folded and idx < len(ops[kk].calls) and ops[kk].calls[idx][0] == "__contpte_try_fold":
                    del ops[kk].calls[idx]  # a fold attempt that folded nothing: see FAILED_TRY_FOLD
            continue
        p = PROBE.match(rest)
        if not p:
            continue
        args = {a: int(v, 0) for a, v in ARG.findall(p["args"])}
        sym = _base(p["sym"])
        obs = ops[k]
        if phase == "dump":
            if event == "vmnp" and "addr" in args and "pte" in args:
                va = engine_addr(args["addr"])
                if _inside(ranges[k], j, va):
                    obs.ptes[(j, va)] = args["pte"] & ((1 << 64) - 1)
            continue
        if event == "fault":
            va = engine_addr(args.get("addr", -1))
            if _inside(ranges[k], j, va) or (k > 0 and _inside(ranges[k - 1], j, va)):
                write = bool(args.get("flags", 0) & FAULT_FLAG_WRITE)
                obs.faults.append((j, va & ~(plan.granule - 1), write))
            continue
        if not sym.startswith(("contpte_", "__contpte_")):
            continue
        outer = depth.get(pid, 0) == 0
        depth[pid] = depth.get(pid, 0) + 1
        if sym in NO_ADDR:
            if outer:
                ident = (sym, j, args.get("a0"))
                if last_get.get(k) != ident or not obs.calls or obs.calls[-1][0] != sym:
                    obs.calls.append((sym, j, None))
                last_get[k] = ident  # see REREAD
            continue
        mm = args.get("v16" if sym in VMA_FIRST else "a0")
        j = mms[k].get(mm, j) if mm is not None else j
        va = engine_addr(args.get("a1", -1))
        if not (_inside(ranges[k], j, va) or (k > 0 and _inside(ranges[k - 1], j, va))):
            continue
        if outer:
            obs.calls.append((sym, j, va))
            if sym == "__contpte_try_fold":
                trying[pid] = (k, len(obs.calls) - 1, False)
        if sym == "contpte_convert" and pid in trying:
            trying[pid] = trying[pid][:2] + (True,)
        if sym == "contpte_convert" and "a3" in args:
            # contpte_convert() aligns its address down to the block itself
            obs.converts.append((j, va & ~(block - 1), bool(args["a3"] >> 52 & 1)))
    for o in ops:
        o.faults = collapse_repeats(o.faults)
    return KernelRun(ops, pids, done, error)


def parse_pagemap(lines: Iterable[str], run: KernelRun) -> None:
    """Add the guest's pagemap dump (runtime.c dump_pagemap) to run's ops."""
    zero_flag = 1 << KPF_ZERO_PAGE
    for raw in lines:
        w = raw.split()
        if len(w) < 7:
            continue
        try:
            k, j = int(w[0]), int(w[1])
            va = engine_addr(int(w[4], 16))
            if not 0 <= k < len(run.ops):
                continue
            if w[3] == "P" and len(w) >= 9:
                pfn, head, nr, flags = int(w[5], 16), int(w[6], 16), int(w[7]), int(w[8], 16)
                zero = bool(flags & zero_flag)
                run.ops[k].pages[(j, va)] = PageInfo("P", 0 if zero else pfn - head, 1 if zero else nr,
                                                     zero, head)
            elif w[3] == "S":
                run.ops[k].pages[(j, va)] = PageInfo("S", int(w[6], 16))
        except ValueError:
            raise TraceError(f"malformed pagemap line: {raw.strip()[:80]!r}") from None


def _mm_map(lines: list[str], target: int, n: int) -> list[dict[int, int]]:
    """Per op k, mm pointer -> scenario process, from the dumps after op k-1
    and op k (each process reads its own smaps, so the task is the mm's)."""
    after: list[dict[int, int]] = [{} for _ in range(n)]
    pids: dict[int, int] = {}
    k, dumping = -1, False
    mine = f"ptlab {target} "
    for raw in lines:
        if "tracing_mark_write" not in raw and "vmnp" not in raw:
            continue
        m = LINE.match(raw)
        if not m:
            continue
        rest = m["rest"]
        if m["event"] == "tracing_mark_write":
            if not rest.startswith(mine):
                continue
            w = rest[len(mine):].split()
            if w[:1] == ["pid"] and len(w) >= 3:
                pids[int(w[2])] = int(w[1])
            elif w[:1] == ["dump"] and len(w) >= 2:
                k, dumping = int(w[1]), True
            elif w[:1] in (["done"], ["op"], ["end"]):
                dumping = False
            continue
        if dumping and m["event"] == "vmnp" and 0 <= k < n:
            j = pids.get(int(m["pid"]))
            mm = dict(ARG.findall(rest)).get("mm")
            if j is not None and mm is not None:
                after[k][int(mm, 0)] = j
    out: list[dict[int, int]] = []
    for k in range(n):
        d = dict(after[k - 1]) if k else {}
        d.update(after[k])
        out.append(d)
    return out


def _ranges(plan: Plan) -> list[list[tuple[int, int, int]]]:
    """Per op, the scenario's mappings in engine addresses (after the op)."""
    return [[(j, engine_addr(s), engine_addr(e)) for j, s, e in d] for d in plan.dumps]


def _inside(ranges: list[tuple[int, int, int]], j: int, va: int) -> bool:
    return any(p == j and s <= va < e for p, s, e in ranges)
