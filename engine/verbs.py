# SPDX-License-Identifier: GPL-2.0-only
"""What each op verb does to a machine.

Every handler first checks its arguments against the machine -- the
mapping name exists in the current process, the range lies inside mapped
VMAs, the access is permitted -- and raises ScenarioError before anything
changes; it then returns the closure that performs the op. Op arguments
(see engine/scenario.py for the text form):

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
from engine.limits import human
from engine.mm.base import VM_FAULT_OOM, VM_FAULT_RETRY
from engine.mm.vma import PROTS, VM_EXEC, VM_HUGEPAGE, VM_READ, VM_SHARED, VM_WRITE, prot_flags

if TYPE_CHECKING:
    from engine.granule import Granule
    from engine.machine import Machine
    from engine.mm.kernel import Kernel
    from engine.mm.process import Process
    from engine.ops import Op

# A page that still faults after this many handled faults is a fault loop:
# the kernel returned without making progress (the 2026 SMMU bug).
MAX_FAULT_RETRIES = 8
ADVICE = ("dontneed", "free", "cold", "pageout", "hugepage", "nohugepage")

# a verb's handler: checks the op's arguments (ScenarioError before anything changes) and returns
# the closure that makes the change
Handler = Callable[["Machine", "Op"], Callable[[], object]]
VERBS: dict[str, Handler] = {}


def verb(name: str) -> Callable[[Handler], Handler]:
    def deco(fn: Handler) -> Handler:
        VERBS[name] = fn
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


@verb("mmap")
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


@verb("touch")
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
        handle = k.handle_mm_fault
        vma = None
        hit_run = None if smmu else mmu.hit_run
        va = start
        while va < end:
            k.ticks -= 1  # an interrupt point per page or run of TLB hits
            if k.ticks < 0:
                k.poll_interrupt()
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
                    m.log.emit(("invariant_violation", "fault-loop", va,
                                f"the fault at {va:#x} repeats: the kernel makes no progress"))
                    break
                if vma is None or not vma.start <= va < vma.end:
                    vma = proc.find_vma(va)
                    assert vma is not None  # [start, end) is covered by VMAs (checked above)
                ret = handle(proc, vma, va, write)
                if ret & VM_FAULT_RETRY:
                    ret = k.retry_fault(proc, vma, va, write, ret)
                if ret & VM_FAULT_OOM:
                    if write:
                        k.user_wrote(mm, start, va)
                    return
            va += ps
        if write:
            k.user_wrote(mm, start, end)

    return run


@verb("fork")
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


@verb("switch")
def _switch(m: Machine, op: Op) -> Callable[[], object]:
    name = _arg(op, "proc")
    p = m.kernel.proc(name)
    if p is None:
        known = ", ".join(q.name for q in m.kernel.live_procs()) or "none"
        raise ScenarioError(f"no running process named {name!r} (running: {known})")

    def run() -> None:
        m.current = p

    return run


@verb("exit")
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


@verb("munmap")
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


@verb("mprotect")
def _mprotect(m: Machine, op: Op) -> Callable[[], object]:
    proc, start, end = m._region(op, need_len=True)
    prot = _arg(op, "prot")
    if prot not in PROTS:
        raise ScenarioError(f"unknown protection {prot!r} (use {', '.join(PROTS)})")
    m._check_vma_room(proc, 2)  # the middle of a VMA: three VMAs
    return lambda: m.kernel.mprotect(proc, start, end, prot_flags(prot))


@verb("madvise")
def _madvise(m: Machine, op: Op) -> Callable[[], object]:
    proc, start, end = m._region(op)
    advice = _arg(op, "advice")
    if advice not in ADVICE:
        raise ScenarioError(f"unknown madvise advice {advice!r} (use {', '.join(ADVICE)})")
    if advice in ("hugepage", "nohugepage"):
        m._check_vma_room(proc, 2)  # a VM_HUGEPAGE change splits VMAs like mprotect
    return lambda: m.kernel.madvise(proc, start, end, advice)


@verb("reclaim")
def _reclaim(m: Machine, op: Op) -> Callable[[], object]:
    k = m.kernel
    if _arg(op, "name") is None:
        return lambda: k.reclaim(k.live_procs(), 0, 1 << 64, True)
    proc, start, end = m._region(op)
    return lambda: k.reclaim([proc], start, end, False)


@verb("migrate")
def _migrate(m: Machine, op: Op) -> Callable[[], object]:
    proc, start, end = m._region(op)
    return lambda: m.kernel.migrate(proc, start, end)


@verb("numa")
def _numa(m: Machine, op: Op) -> Callable[[], object]:
    proc, start, end = m._region(op)
    return lambda: m.kernel.numa_scan(proc, start, end)


@verb("mremap")
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


@verb("split")
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


@verb("collapse")
def _collapse(m: Machine, op: Op) -> Callable[[], object]:
    proc, start, _end = m._region(op)
    haddr = start & ~(m.g.pmd_size - 1)
    vma = proc.find_vma(start)
    if vma is None or vma.start > haddr or vma.end < haddr + m.g.pmd_size:
        raise ScenarioError(f"collapse needs one VMA covering the whole PMD range at {haddr:#x}")
    if not vma.anon or vma.shared:
        raise ScenarioError("collapse handles private anonymous memory only")
    return lambda: m.kernel.collapse(proc, vma, haddr)


@verb("read")
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


@verb("gup")
def _gup(m: Machine, op: Op) -> Callable[[], object]:
    proc, start, end = m._region(op)
    write = bool(_arg(op, "write"))
    race = bool(_arg(op, "race"))
    k = m.kernel
    arch = m.arch

    def run() -> None:
        if not race:
            k.gup_fast(proc, start, end, write)
            return
        # Another CPU unfolds the block while the first lockless gather is
        # half way through it (the reader's third read).
        calls = [0]

        def racing_cpu() -> None:
            calls[0] += 1
            if calls[0] == 3:
                block = start & arch.cont_mask
                pte = proc.mm.pt.get(block)
                m.log.emit(("mm", "race_unfold", block, proc.name))
                arch.contpte_try_unfold(proc.mm, block, pte)

        arch.lockless_hook = racing_cpu
        try:
            k.gup_fast(proc, start, end, write)
        finally:
            arch.lockless_hook = None

    return run
