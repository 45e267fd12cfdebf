# SPDX-License-Identifier: GPL-2.0-only
"""Each op verb in one place: its text form and what it does to a machine.

A verb is a parser beside its handler, registered together by
:func:`verb`. The parser turns the words after the verb on a scenario line
(docs/scenarios.md; engine/scenario.py hands them over) into the op's
arguments, or raises ScenarioError. The handler first checks the arguments
against the machine -- the mapping name exists in the current process, the
range lies inside mapped VMAs, the access is permitted -- and raises
ScenarioError before anything changes; it then returns the closure that
performs the op. Op arguments:

=========  ====================================================================
mmap       name, size, prot, kind ("anon"|"file"), file, shared, at, hugepage
touch      name, off, len, access ("read"|"write"), via ("cpu"|"smmu")
fork       child
switch     proc
exit       proc
munmap     name, off, len
mprotect   name, off, len, prot
madvise    name, off, len, advice
reclaim    name (None: a global pass)
migrate    name, off, len
numa       name, off, len
mremap     name, addr
split      name, off, len, order, pmd
collapse   name, off
read       file, off, len
gup        name, off, len, write, race
=========  ====================================================================
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from engine import limits
from engine.errors import ScenarioError
from engine.expressions import looks_like_size, parse_size
from engine.limits import human
from engine.mm.base import VM_FAULT_OOM, VM_FAULT_RETRY
from engine.mm.fault import retry_fault, user_wrote
from engine.mm.gup import gup_fast
from engine.mm.huge import handle_mm_fault
from engine.mm.vma import PROTS, VM_EXEC, VM_HUGEPAGE, VM_READ, VM_SHARED, VM_WRITE, prot_flags

if TYPE_CHECKING:
    from engine.granule import Granule
    from engine.mm.kernel import Kernel
    from engine.mm.process import Process
    from engine.ops import Op
    from engine.scenario_machine import Machine

# A page that still faults after this many handled faults is a fault loop:
# the kernel returned without making progress (the 2026 SMMU bug).
MAX_FAULT_RETRIES = 8
ADVICE = ("dontneed", "free", "cold", "pageout", "hugepage", "nohugepage")

# a verb's handler: checks the op's arguments (ScenarioError before anything changes) and returns
# the closure that makes the change
Handler = Callable[["Machine", "Op"], Callable[[], object]]
Syntax = Callable[[list[str]], dict[str, Any]]  # the words after the verb -> the op's arguments

VERBS: dict[str, Handler] = {}
SYNTAX: dict[str, Syntax] = {}


def verb(name: str, syntax: Syntax) -> Callable[[Handler], Handler]:
    """Register a verb: ``syntax`` parses its text form, the decorated function handles it."""

    def deco(fn: Handler) -> Handler:
        VERBS[name] = fn
        SYNTAX[name] = syntax
        return fn

    return deco


def _arg(op: Op, key: str, default: Any = None) -> Any:
    return op.args.get(key, default)


class Verbs:
    """Argument checks shared by the verb handlers (mixed into Machine)."""

    # what these checks read of the Machine they are mixed into (annotations only: no class attributes)
    current: Process | None
    g: Granule
    kernel: Kernel

    def _proc(self) -> Process:
        if self.current is None or not self.current.alive:
            raise ScenarioError("no running process (every process has exited)")
        return self.current

    def _region(self, op: Op, need_len: bool = False) -> tuple[Process, int, int]:
        """[start, end) of NAME +OFF LEN in the current process."""
        proc = self._proc()
        name = _arg(op, "name")
        if name not in proc.regions:
            known = ", ".join(sorted(proc.regions)) or "none"
            raise ScenarioError(f"no mapping named {name!r} in process {proc.name} (mappings: {known})")
        rstart, size = proc.regions[name]
        off = _arg(op, "off", 0) or 0
        length = _arg(op, "len")
        if length is None:
            if need_len:
                raise ScenarioError(f"{op.verb} needs +OFF LEN")
            length = size - off
        ps = self.g.page_size
        if off % ps or length % ps:
            raise ScenarioError(f"offset {off:#x} and length {length:#x} must be multiples of the "
                                f"{self.g.name} page size")
        if length <= 0:
            raise ScenarioError("length must be positive")
        if off < 0 or off + length > size:
            raise ScenarioError(f"+{off:#x} {length:#x} lies outside mapping {name!r} "
                                f"({size:#x} bytes)")
        start = rstart + off
        end = start + length
        if not proc.covered(start, end):
            hole = _first_hole(proc, start, end)
            raise ScenarioError(f"address {hole:#x} ({name} +{hole - rstart:#x}) is outside any VMA")
        return proc, start, end

    # --- limits (engine/limits.py): checked before anything changes ---------------------
    def _check_vma_room(self, proc: Process, more: int) -> None:
        """Room for ``more`` VMAs in proc (mmap: 1; a split in the middle: 2)."""
        if len(proc.vmas) + more > limits.MAX_MAP_COUNT:
            raise ScenarioError(f"process {proc.name} would have more than {limits.MAX_MAP_COUNT} VMAs "
                                "(vm.max_map_count)")
        if sum(len(p.vmas) for p in self.kernel.live_procs()) + more > limits.MAX_TOTAL_VMAS:
            raise ScenarioError(f"more than {limits.MAX_TOTAL_VMAS:,} VMAs in all processes together "
                                "(ptlab's limit)")

    def _check_mapped_room(self, more: int) -> None:
        mapped = sum(p.mapped_bytes() for p in self.kernel.live_procs())
        if mapped + more > limits.MAX_MAPPED:
            raise ScenarioError(f"{human(more)} more would bring the address space mapped by all processes "
                                f"to {human(mapped + more)}, above ptlab's limit of "
                                f"{human(limits.MAX_MAPPED)}")

    def _check_file_room(self, more_pages: int) -> None:
        if more_pages <= 0:
            return
        pages = sum(f.npages for f in self.kernel.pc.files.values())
        shift = self.g.page_shift
        if (pages + more_pages) << shift > limits.MAX_FILES:
            raise ScenarioError(f"files and shmem would total {human((pages + more_pages) << shift)}, above "
                                f"ptlab's limit of {human(limits.MAX_FILES)}")


def _first_hole(proc: Process, start: int, end: int) -> int:
    """The lowest address in [start, end) outside every VMA (the range is not covered)."""
    pos = start
    for v in proc.vmas_in(start, end):  # sorted by start
        if v.start > pos:
            break
        pos = max(pos, v.end)
    return pos


# --- the text form: what the verbs' parsers share -------------------------------------------
def _offset(tok: str) -> int:
    if not tok.startswith("+"):
        raise ScenarioError(f"expected an offset like +64K, got {tok!r}")
    return parse_size(tok[1:])


def _target(verb: str, toks: list[str], need_len: bool = False) -> tuple[dict[str, Any], list[str]]:
    """NAME [+OFF [LEN]] -> args, remaining tokens."""
    if not toks:
        raise ScenarioError(f"{verb} needs a mapping name")
    args: dict[str, Any] = {"name": toks[0]}
    rest = toks[1:]
    if rest and rest[0].startswith("+"):
        args["off"] = _offset(rest[0])
        rest = rest[1:]
        if rest and looks_like_size(rest[0]):
            args["len"] = parse_size(rest[0])
            rest = rest[1:]
    if need_len and "len" not in args:
        raise ScenarioError(f"{verb} needs NAME +OFF LEN")
    return args, rest


def _no_more(verb: str, rest: list[str]) -> None:
    if rest:
        raise ScenarioError(f"unexpected {' '.join(rest)!r} after {verb}")


def _just_target(verb: str) -> Syntax:
    """The syntax ``VERB NAME [+OFF [LEN]]`` and nothing after."""

    def parse(rest: list[str]) -> dict[str, Any]:
        args, rest = _target(verb, rest)
        _no_more(verb, rest)
        return args

    return parse


# --- the verbs: each one's parser, then its handler ------------------------------------------


def _parse_mmap(rest: list[str]) -> dict[str, Any]:
    if len(rest) < 2:
        raise ScenarioError("mmap needs NAME SIZE")
    args: dict[str, Any] = {"name": rest[0], "size": parse_size(rest[1]), "prot": "rw",
                            "kind": "anon", "shared": False, "at": None, "file": None,
                            "hugepage": False}
    i = 2
    while i < len(rest):
        t = rest[i]
        if t in PROTS:
            args["prot"] = t
        elif t == "anon":
            args["kind"] = "anon"
        elif t == "file" or t.startswith("file="):
            args["kind"] = "file"
            if "=" in t:
                args["file"] = t.split("=", 1)[1] or None
        elif t in ("private", "shared"):
            args["shared"] = t == "shared"
        elif t == "hugepage":
            args["hugepage"] = True
        elif t == "at":
            if i + 1 >= len(rest):
                raise ScenarioError("'at' needs an address")
            args["at"] = parse_size(rest[i + 1])
            i += 1
        else:
            raise ScenarioError(f"unknown mmap option {t!r}")
        i += 1
    return args


@verb("mmap", _parse_mmap)
def _mmap(m: Machine, op: Op) -> Callable[[], object]:
    proc = m._proc()
    name = _arg(op, "name")
    size = _arg(op, "size")
    g = m.g
    if not name:
        raise ScenarioError("mmap needs a name")
    if name in proc.regions:
        raise ScenarioError(f"mapping {name!r} already exists in process {proc.name}")
    if not isinstance(size, int) or size <= 0 or size % g.page_size:
        raise ScenarioError(f"mmap size must be a positive multiple of {g.name}")
    if size > limits.MAX_MAPPED:
        raise ScenarioError(f"mmap of {human(size)} is above ptlab's limit of {human(limits.MAX_MAPPED)} "
                            "mapped")
    prot = _arg(op, "prot", "rw")
    if prot not in PROTS:
        raise ScenarioError(f"unknown protection {prot!r} (use {', '.join(PROTS)})")
    kind = _arg(op, "kind", "anon")
    shared = bool(_arg(op, "shared", False))
    flags = prot_flags(prot) | (VM_SHARED if shared else 0)
    if _arg(op, "hugepage"):
        flags |= VM_HUGEPAGE
    at = _arg(op, "at")
    k = m.kernel
    if at is None:
        at = proc.get_unmapped_area(size, g, thp_align=kind == "anon" and not shared)
        if at < 0:
            raise ScenarioError(f"no room for {size:#x} bytes in the address space")
    else:
        if at % g.page_size:
            raise ScenarioError(f"address {at:#x} is not page aligned")
        if at + size > 1 << 48:
            raise ScenarioError(f"{at:#x} + {size:#x} is beyond the 48-bit user address space")
        if proc.overlaps(at, at + size):
            raise ScenarioError(f"{at:#x}..{at + size:#x} overlaps an existing mapping")
    npages = size >> g.page_shift
    m._check_vma_room(proc, 1)
    m._check_mapped_room(size)
    if kind == "file":
        existing = k.pc.by_name(_arg(op, "file") or name)
        m._check_file_room(npages - (existing.npages if existing else 0))
    elif shared:
        m._check_file_room(npages)

    def run() -> None:
        fid = 0
        shmem = False
        if kind == "file":
            fname = _arg(op, "file") or name
            f = k.pc.by_name(fname)
            if f is None:
                f = k.pc.create(fname, npages)
            f.resize(npages)
            fid = f.fid
        elif shared:
            fid = k.pc.create(f"shmem:{proc.name}:{name}", npages, shmem=True).fid
            shmem = True
        k.mmap(proc, name, at, size, flags, fid, shmem)

    return run


def _parse_touch(rest: list[str]) -> dict[str, Any]:
    args, rest = _target("touch", rest)
    args["access"] = "read"
    args["via"] = "cpu"
    seen = False
    for t in rest:
        if t in ("read", "write"):
            args["access"] = t
            seen = True
        elif t in ("cpu", "smmu"):
            args["via"] = t
        else:
            raise ScenarioError(f"unknown touch option {t!r} (read|write [smmu])")
    if not seen:
        raise ScenarioError("touch needs read or write")
    return args


@verb("touch", _parse_touch)
def _touch(m: Machine, op: Op) -> Callable[[], object]:
    proc, start, end = m._region(op)
    write = _arg(op, "access", "read") == "write"
    smmu = _arg(op, "via", "cpu") == "smmu"
    need = VM_WRITE if write else (VM_READ | VM_EXEC)
    for v in proc.vmas_in(start, end):
        if not v.flags & need:
            raise ScenarioError(f"{'write' if write else 'read'} of {v.region} at {max(start, v.start):#x} "
                                f"would fault with SIGSEGV: the VMA is {v.prot}")
    k = m.kernel
    mmu = m.mmu
    ps = m.g.page_size

    def run() -> None:
        mm = proc.mm
        access = mmu.device_access if smmu else mmu.access
        handle = handle_mm_fault
        ctx = k.ctx
        vma = None
        hit_run = None if smmu else mmu.hit_run
        va = start
        while va < end:
            ctx.ticks -= 1  # an interrupt point per page or run of TLB hits
            if ctx.ticks < 0:
                ctx.poll_interrupt()
            if hit_run is not None:
                n = hit_run(mm, va, end, write)
                if n:
                    va += n * ps
                    continue
            tries = 0
            while True:
                if not access(mm, va, write):
                    break
                tries += 1
                if tries > MAX_FAULT_RETRIES:
                    m.log.invariant_violation("fault-loop", va,
                                              f"the fault at {va:#x} repeats: the kernel makes no progress")
                    break
                if vma is None or not vma.start <= va < vma.end:
                    vma = proc.find_vma(va)
                    assert vma is not None  # [start, end) is covered by VMAs (checked above)
                ret = handle(ctx, proc, vma, va, write)
                if ret & VM_FAULT_RETRY:
                    ret = retry_fault(ctx, proc, vma, va, write, ret)
                if ret & VM_FAULT_OOM:
                    if write:
                        user_wrote(ctx, mm, start, va)
                    return
            va += ps
        if write:
            user_wrote(ctx, mm, start, end)

    return run


def _parse_fork(rest: list[str]) -> dict[str, Any]:
    if len(rest) > 1:
        raise ScenarioError("fork takes at most a child name")
    return {"child": rest[0] if rest else None}


@verb("fork", _parse_fork)
def _fork(m: Machine, op: Op) -> Callable[[], object]:
    parent = m._proc()
    k = m.kernel
    child = _arg(op, "child") or f"p{len(k.procs)}"
    if any(p.name == child for p in k.procs):
        raise ScenarioError(f"a process named {child!r} already exists")
    if len(k.procs) >= limits.MAX_PROCESSES:
        raise ScenarioError(f"fork: {limits.MAX_PROCESSES:,} processes were created already "
                            "(ptlab's limit, exited ones included)")
    if sum(len(p.vmas) for p in k.live_procs()) + len(parent.vmas) > limits.MAX_TOTAL_VMAS:
        raise ScenarioError(f"fork: more than {limits.MAX_TOTAL_VMAS:,} VMAs in all processes together "
                            "(ptlab's limit)")
    m._check_mapped_room(parent.mapped_bytes())

    def run() -> None:
        k.fork(parent, child)

    return run


def _parse_switch(rest: list[str]) -> dict[str, Any]:
    if len(rest) != 1:
        raise ScenarioError("switch needs a process name")
    return {"proc": rest[0]}


@verb("switch", _parse_switch)
def _switch(m: Machine, op: Op) -> Callable[[], object]:
    name = _arg(op, "proc")
    p = m.kernel.proc(name)
    if p is None:
        known = ", ".join(q.name for q in m.kernel.live_procs()) or "none"
        raise ScenarioError(f"no running process named {name!r} (running: {known})")

    def run() -> None:
        m.current = p

    return run


def _parse_exit(rest: list[str]) -> dict[str, Any]:
    if len(rest) > 1:
        raise ScenarioError("exit takes at most a process name")
    return {"proc": rest[0] if rest else None}


@verb("exit", _parse_exit)
def _exit(m: Machine, op: Op) -> Callable[[], object]:
    name = _arg(op, "proc")
    k = m.kernel
    p = m._proc() if name is None else k.proc(name)
    if p is None:
        raise ScenarioError(f"no running process named {name!r}")

    def run() -> None:
        k.exit(p)
        if m.current is p:
            parent = k.proc(p.parent) if p.parent else None
            live = k.live_procs()
            m.current = parent if parent is not None else (live[0] if live else None)

    return run


@verb("munmap", _just_target("munmap"))
def _munmap(m: Machine, op: Op) -> Callable[[], object]:
    proc, start, end = m._region(op)
    m._check_vma_room(proc, 1)  # unmapping the middle of a VMA splits it in two
    name = _arg(op, "name")

    def run() -> None:
        m.kernel.munmap(proc, start, end)
        rs, rsize = proc.regions[name]
        if not proc.vmas_in(rs, rs + rsize):
            del proc.regions[name]

    return run


def _parse_mprotect(rest: list[str]) -> dict[str, Any]:
    args, rest = _target("mprotect", rest, need_len=True)
    if len(rest) != 1 or rest[0] not in PROTS:
        raise ScenarioError(f"mprotect needs a protection ({'|'.join(PROTS)})")
    args["prot"] = rest[0]
    return args


@verb("mprotect", _parse_mprotect)
def _mprotect(m: Machine, op: Op) -> Callable[[], object]:
    proc, start, end = m._region(op, need_len=True)
    prot = _arg(op, "prot")
    if prot not in PROTS:
        raise ScenarioError(f"unknown protection {prot!r} (use {', '.join(PROTS)})")
    m._check_vma_room(proc, 2)  # the middle of a VMA: three VMAs
    return lambda: m.kernel.mprotect(proc, start, end, prot_flags(prot))


def _parse_madvise(rest: list[str]) -> dict[str, Any]:
    args, rest = _target("madvise", rest)
    if len(rest) != 1 or rest[0] not in ADVICE:
        raise ScenarioError(f"madvise needs an advice ({'|'.join(ADVICE)})")
    args["advice"] = rest[0]
    return args


@verb("madvise", _parse_madvise)
def _madvise(m: Machine, op: Op) -> Callable[[], object]:
    proc, start, end = m._region(op)
    advice = _arg(op, "advice")
    if advice not in ADVICE:
        raise ScenarioError(f"unknown madvise advice {advice!r} (use {', '.join(ADVICE)})")
    if advice in ("hugepage", "nohugepage"):
        m._check_vma_room(proc, 2)  # a VM_HUGEPAGE change splits VMAs like mprotect
    return lambda: m.kernel.madvise(proc, start, end, advice)


def _parse_reclaim(rest: list[str]) -> dict[str, Any]:
    if len(rest) > 1:
        raise ScenarioError("reclaim takes at most a mapping name")
    if rest:
        return {"name": rest[0]}
    return {"name": None}


@verb("reclaim", _parse_reclaim)
def _reclaim(m: Machine, op: Op) -> Callable[[], object]:
    k = m.kernel
    if _arg(op, "name") is None:
        return lambda: k.reclaim(k.live_procs(), 0, 1 << 64, True)
    proc, start, end = m._region(op)
    return lambda: k.reclaim([proc], start, end, False)


@verb("migrate", _just_target("migrate"))
def _migrate(m: Machine, op: Op) -> Callable[[], object]:
    proc, start, end = m._region(op)
    return lambda: m.kernel.migrate(proc, start, end)


@verb("numa", _just_target("numa"))
def _numa(m: Machine, op: Op) -> Callable[[], object]:
    proc, start, end = m._region(op)
    return lambda: m.kernel.numa_scan(proc, start, end)


def _parse_mremap(rest: list[str]) -> dict[str, Any]:
    if len(rest) != 2:
        raise ScenarioError("mremap needs NAME ADDR")
    return {"name": rest[0], "addr": parse_size(rest[1])}


@verb("mremap", _parse_mremap)
def _mremap(m: Machine, op: Op) -> Callable[[], object]:
    proc, start, end = m._region(op)
    vmas = proc.vmas_in(start, end)
    # the region may be part of a larger VMA (mmap() merged it with a
    # neighbour): mremap() of that sub-range moves just it, as the kernel does
    if len(vmas) != 1 or vmas[0].start > start or vmas[0].end < end:
        raise ScenarioError(f"mremap moves one whole VMA; {_arg(op, 'name')} is {len(vmas)} VMAs")
    addr = _arg(op, "addr")
    if not isinstance(addr, int) or addr % m.g.page_size:
        raise ScenarioError("mremap needs a page-aligned target address")
    if addr + (end - start) > 1 << 48:
        raise ScenarioError("mremap target is beyond the 48-bit user address space")
    if proc.overlaps(addr, addr + (end - start)):
        raise ScenarioError(f"mremap target {addr:#x} overlaps a mapping")
    return lambda: m.kernel.mremap(proc, _arg(op, "name"), start, end, addr)


def _parse_split(rest: list[str]) -> dict[str, Any]:
    # split NAME [+OFF] [ORDER|SIZE] [pmd]: a number is the new order, a
    # size (64K) the new folio size; no +OFF means the whole mapping
    if not rest:
        raise ScenarioError("split needs a mapping name")
    args: dict[str, Any] = {"name": rest[0]}
    rest = rest[1:]
    if rest and rest[0].startswith("+"):
        args["off"] = _offset(rest[0])
        rest = rest[1:]
    args["order"] = 0
    args["pmd"] = False
    for t in rest:
        if t == "pmd":
            args["pmd"] = True
        elif t.isascii() and t.isdigit():  # not '²': str.isdigit takes any Unicode digit
            args["order"] = int(t)
        elif looks_like_size(t):
            size = parse_size(t)
            if size & (size - 1):
                raise ScenarioError(f"split size {t} is not a power of two")
            args["order_size"] = size
        else:
            raise ScenarioError(f"unknown split option {t!r} (ORDER, SIZE or pmd)")
    return args


@verb("split", _parse_split)
def _split(m: Machine, op: Op) -> Callable[[], object]:
    proc, start, end = m._region(op)
    if _arg(op, "len") is None and _arg(op, "off") is not None:
        end = start + m.g.page_size  # NAME +OFF: the folio (or PMD) at that offset
        if not proc.find_vma(start):
            raise ScenarioError(f"address {start:#x} is outside any VMA")
    order = _arg(op, "order") or 0
    size = _arg(op, "order_size")
    if size is not None:
        if size < m.g.page_size:
            raise ScenarioError(f"split size {size:#x} is smaller than a page")
        order = (size >> m.g.page_shift).bit_length() - 1
    if not 0 <= order < m.g.pmd_order + 1:
        raise ScenarioError(f"split order {order} is out of range")
    pmd_only = bool(_arg(op, "pmd"))
    return lambda: m.kernel.split_range(proc, start, end, order, pmd_only)


@verb("collapse", _just_target("collapse"))
def _collapse(m: Machine, op: Op) -> Callable[[], object]:
    proc, start, _end = m._region(op)
    haddr = start & ~(m.g.pmd_size - 1)
    vma = proc.find_vma(start)
    if vma is None or vma.start > haddr or vma.end < haddr + m.g.pmd_size:
        raise ScenarioError(f"collapse needs one VMA covering the whole PMD range at {haddr:#x}")
    if not vma.anon or vma.shared:
        raise ScenarioError("collapse handles private anonymous memory only")
    return lambda: m.kernel.collapse(proc, vma, haddr)


def _parse_read(rest: list[str]) -> dict[str, Any]:
    if not rest:
        raise ScenarioError("read needs a file name")
    args, rest = _target("read", rest)
    _no_more("read", rest)
    args["file"] = args.pop("name")
    return args


@verb("read", _parse_read)
def _read(m: Machine, op: Op) -> Callable[[], object]:
    k = m.kernel
    fname = _arg(op, "file")
    f = k.pc.by_name(fname)
    if f is None:
        raise ScenarioError(f"no file named {fname!r}")
    ps = m.g.page_size
    off = _arg(op, "off", 0) or 0
    length = _arg(op, "len")
    size = f.npages * ps
    if length is None:
        length = size - off
    if off % ps or length % ps or length <= 0 or off + length > size:
        raise ScenarioError(f"read range +{off:#x} {length:#x} does not fit file {fname!r} ({size:#x} bytes)")
    return lambda: k.read_file(f.fid, off // ps, (off + length) // ps - 1)


def _parse_gup(rest: list[str]) -> dict[str, Any]:
    args, rest = _target("gup", rest)
    for t in rest:
        if t not in ("read", "write", "race"):
            raise ScenarioError(f"unknown gup option {t!r} (read|write, race)")
    args["write"] = "write" in rest
    args["race"] = "race" in rest
    return args


@verb("gup", _parse_gup)
def _gup(m: Machine, op: Op) -> Callable[[], object]:
    proc, start, end = m._region(op)
    write = bool(_arg(op, "write"))
    race = bool(_arg(op, "race"))
    k = m.kernel
    arch = m.arch

    def run() -> None:
        if not race:
            gup_fast(k.ctx, proc, start, end, write)
            return
        # Another CPU unfolds the block while the first lockless gather is
        # half way through it (the reader's third read).
        calls = [0]

        def racing_cpu() -> None:
            calls[0] += 1
            if calls[0] == 3:
                block = start & arch.cont_mask
                pte = proc.mm.pt.get(block)
                m.log.mm("race_unfold", block, proc.name)
                arch.contpte_try_unfold(proc.mm, block, pte)

        arch.lockless_hook = racing_cpu
        try:
            gup_fast(k.ctx, proc, start, end, write)
        finally:
            arch.lockless_hook = None

    return run
