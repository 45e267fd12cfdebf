# SPDX-License-Identifier: GPL-2.0-only
"""Capture a live process: VMAs, pagemap, kpageflags, kpagecount, folios.

Order of reads (one *attempt*):

1. ``/proc/PID/smaps`` (falls back to ``/proc/PID/maps`` when unreadable: no
   THP counters then). psutil's ``memory_maps(grouped=False)`` parses the same
   file but drops the offset, device, inode, VmFlags and THP counters a
   capture needs, so smaps is read directly; psutil identifies the process.
2. ``/proc/PID/pagemap`` for each VMA with resident or swapped memory. Where
   the kernel has ``PAGEMAP_SCAN`` (6.7+) it first finds the present/swapped
   regions (so a 16 TiB reservation costs nothing) and which of them are
   PMD-mapped (``PAGE_IS_HUGE``) or the zero page (``PAGE_IS_PFNZERO``).
3. ``/proc/kpageflags`` and ``/proc/kpagecount`` for every present PFN, then
   the folio of every compound page: its head (the nearest naturally aligned
   COMPOUND_HEAD below it) and its size (head plus the COMPOUND_TAIL pages
   after it), including the parts of the folio this process does not map.
4. Verification: ``/proc/PID/maps`` again (the VMA list must be unchanged),
   ``pagemap`` again for every captured page (present/swap/file bits and PFN
   must be unchanged) and the process start time (PID not reused).

An attempt that fails verification is retried (``retries`` times). If the
process keeps changing, the last attempt is kept with the changed VMAs and
pages dropped, so the result is consistent, and a warning says what went.
A process that exits mid-capture raises :class:`ProcessGone` (or, with
``partial=True``, returns the VMAs read completely, with a warning).

Without CAP_SYS_ADMIN the kernel zeroes every PFN; the capture then keeps the
VMA layout and present/swapped bits and synthesises folios
(:mod:`engine.capture.synth`), saying so in one warning.
"""

from __future__ import annotations

import errno
import sys
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field

from engine.capture.model import (
    KPF_COMPOUND_HEAD,
    KPF_COMPOUND_TAIL,
    PM_IDENTITY_MASK,
    PM_PFN_MASK,
    PM_PRESENT,
    Capture,
    CapturedVMA,
    CaptureError,
    ProcessGone,
)
from engine.capture.procfs import (
    PAGE_IS_FILE,
    PAGE_IS_HUGE,
    PAGE_IS_PFNZERO,
    PAGE_IS_PRESENT,
    PAGE_IS_SWAPPED,
    BinFile,
    ProcReader,
    ScanRegion,
    parse_maps,
)

CHUNK_ENTRIES = 1 << 15  # pagemap entries per pread (256 KiB)
MAX_FOLIO_ORDER = 18  # 1 GiB of 4K pages: the largest compound page searched for
DEFAULT_MAX_PAGEMAP_BYTES = 256 << 20  # per VMA, when PAGEMAP_SCAN cannot skip holes


_PRESENT_OR_SWAP = bytes(1 if b & 0xC0 else 0 for b in range(256))
_TOP_BYTE = 7 if sys.byteorder == "little" else 0


class _Gone(Exception):
    """Internal: the process went away while reading."""


@dataclass
class _Attempt:
    vmas: list[CapturedVMA]
    have_smaps: bool
    vfns: array[int] = field(default_factory=lambda: array("Q"))
    pagemap: array[int] = field(default_factory=lambda: array("Q"))
    zero: set[int] = field(default_factory=set)  # indices the scan reported as the zero page
    pmd_mapped: list[tuple[int, int]] = field(default_factory=list)
    scan_used: bool = False
    gone_after: int | None = None  # VMAs fully read before the process vanished
    warnings: list[str] = field(default_factory=list)
    changed_vmas: set[int] = field(default_factory=set)  # VMA starts that changed
    changed_pages: set[int] = field(default_factory=set)  # page indices that changed
    reused: bool = False


class _FlagCache:
    """/proc/kpageflags or /proc/kpagecount read in aligned chunks, cached."""

    CHUNK = 512

    def __init__(self, f: BinFile):
        self.f = f
        self.chunks: dict[int, array[int]] = {}

    def get(self, pfn: int) -> int:
        k, off = divmod(pfn, self.CHUNK)
        c = self.chunks.get(k)
        if c is None:
            data = self.f.pread(8 * self.CHUNK, 8 * self.CHUNK * k)
            c = array("Q")
            c.frombytes(data[: len(data) // 8 * 8])
            if len(c) < self.CHUNK:
                c.extend([0] * (self.CHUNK - len(c)))
            self.chunks[k] = c
        return c[off]


def _identity(reader: ProcReader, pid: int) -> tuple[str, float]:
    try:
        return reader.identity(pid)
    except ProcessLookupError:
        raise ProcessGone(f"no process with PID {pid}") from None
    except PermissionError:
        raise CaptureError(f"not allowed to inspect PID {pid}") from None


def capture_process(pid: int, *, reader: ProcReader | None = None, retries: int = 2,
                    partial: bool = False, mthp_sizes: Sequence[int] | None = None,
                    max_pagemap_bytes: int = DEFAULT_MAX_PAGEMAP_BYTES) -> Capture:
    """Capture process ``pid``. Raises :class:`ProcessGone` or :class:`CaptureError`
    with a one-line message; everything else that went less than perfectly is a
    line in ``Capture.warnings``.

    ``mthp_sizes`` (bytes) overrides the sysfs mTHP settings when folios have to
    be synthesised (PFNs hidden); see :mod:`engine.capture.synth`.
    """
    if not isinstance(pid, int) or pid <= 0:
        raise CaptureError(f"{pid!r} is not a process ID")
    reader = reader or ProcReader()
    comm, started = _identity(reader, pid)
    page_size = reader.page_size()
    release, machine = reader.uname()
    try:
        thp = reader.thp_settings()
    except OSError:
        thp = {}
    pmd_size = int(thp.get("hpage_pmd_size") or 0) or _default_pmd_size(page_size)
    info = {"kernel_release": release, "machine": machine, **thp}
    warnings: list[str] = []
    cap = Capture(pid, comm, page_size, pmd_size, info=info)

    att: _Attempt | None = None
    for attempt in range(retries + 1):
        att = _read_attempt(reader, cap, started, max_pagemap_bytes, partial)
        if att.reused:
            raise ProcessGone(f"process {pid} ({comm}) exited during the capture and its PID was reused")
        if att.gone_after is not None:
            break
        if not (att.changed_vmas or att.changed_pages):
            if attempt:
                warnings.append(f"mappings changed while capturing; attempt {attempt + 1} was consistent")
            break
    assert att is not None
    warnings.extend(att.warnings)
    if att.gone_after is not None:
        warnings.append(f"process {pid} ({comm}) exited during the capture: kept the "
                        f"{att.gone_after} of {len(att.vmas)} VMAs read before it went")
        att.vmas = att.vmas[: att.gone_after]
    elif att.changed_vmas or att.changed_pages:
        warnings.append(f"mappings kept changing over {retries + 1} attempts: dropped "
                        f"{len(att.changed_vmas)} VMAs and {len(att.changed_pages)} pages that "
                        "changed during the last one")
    _assemble(cap, att, reader, warnings)
    cap.warnings = warnings
    if not cap.pfns_visible and len(cap.vfns):
        from engine.capture.synth import synthesize  # here: synth imports live (a cycle)

        synthesize(cap, att.zero, mthp_sizes)
    elif cap.pfns_visible and not cap.flags_visible and len(cap.vfns):
        from engine.capture.synth import synthesize  # here: synth imports live (a cycle)

        synthesize(cap, att.zero, mthp_sizes, keep_pfns=True)
    elif cap.pmd_source == "none":
        infer_pmd_mapped(cap, require_folio=cap.flags_visible)
    cap.check()
    return cap


def _default_pmd_size(page_size: int) -> int:
    shift = page_size.bit_length() - 1
    return 1 << ((shift - 3) * 2 + 3)


# --- one attempt ---------------------------------------------------------------------------------
def _read_vmas(reader: ProcReader, pid: int) -> tuple[list[CapturedVMA], bool, list[str]]:
    warnings: list[str] = []
    try:
        text = reader.read_text(f"/proc/{pid}/smaps")
        have_smaps = True
    except (ProcessLookupError, FileNotFoundError):
        raise _Gone() from None
    except PermissionError:
        try:
            text = reader.read_text(f"/proc/{pid}/maps")
        except (ProcessLookupError, FileNotFoundError):
            raise _Gone() from None
        except PermissionError:
            raise CaptureError(f"cannot read /proc/{pid}/maps: permission denied (capturing needs the "
                               "process's user or CAP_SYS_PTRACE)") from None
        have_smaps = False
        warnings.append(f"/proc/{pid}/smaps is unreadable: no THP counters (AnonHugePages ...)")
    return parse_maps(text, name=f"/proc/{pid}/{'smaps' if have_smaps else 'maps'}"), have_smaps, warnings


def _read_attempt(reader: ProcReader, cap: Capture, started: float, max_pagemap_bytes: int,
                  partial: bool) -> _Attempt:
    pid = cap.pid
    try:
        vmas, have_smaps, warns = _read_vmas(reader, pid)
    except _Gone:
        raise ProcessGone(f"process {pid} ({cap.comm}) exited before its mappings could be read") from None
    if not vmas:
        _check_alive(reader, pid, started, cap.comm)
        raise CaptureError(f"process {pid} ({cap.comm}) has no user address space "
                           "(a kernel thread or a zombie)")
    att = _Attempt(vmas, have_smaps, warnings=warns)
    try:
        pm = reader.open_binary(f"/proc/{pid}/pagemap")
    except (ProcessLookupError, FileNotFoundError):
        raise ProcessGone(f"process {pid} ({cap.comm}) exited during the capture") from None
    except PermissionError:
        raise CaptureError(f"cannot read /proc/{pid}/pagemap: permission denied (capturing needs the "
                           "process's user or CAP_SYS_PTRACE)") from None
    try:
        for k, vma in enumerate(vmas):
            try:
                _read_vma(reader, pm, cap, att, vma, started, max_pagemap_bytes)
            except _Gone:
                if not partial:
                    raise ProcessGone(f"process {pid} ({cap.comm}) exited during the capture "
                                      f"(after {k} of {len(vmas)} VMAs)") from None
                att.gone_after = k
                del att.vfns[vma.first:]
                del att.pagemap[vma.first:]
                att.zero = {i for i in att.zero if i < vma.first}
                vma.count = 0
                return att
        try:
            _verify(reader, pm, cap, att, started)
        except ProcessGone:
            if not partial:
                raise
            att.gone_after = len(vmas)  # everything was read; only the check could not finish
            att.changed_vmas.clear()
            att.changed_pages.clear()
    finally:
        pm.close()
    return att


def _check_alive(reader: ProcReader, pid: int, started: float, comm: str) -> None:
    try:
        _, now = reader.identity(pid)
    except ProcessLookupError:
        raise _Gone() from None
    except PermissionError:
        return
    if now != started:
        raise _Gone()


def _read_vma(reader: ProcReader, pm: BinFile, cap: Capture, att: _Attempt, vma: CapturedVMA,
              started: float, max_pagemap_bytes: int) -> None:
    shift = cap.page_shift
    vma.first = len(att.vfns)
    vma.count = 0
    if vma.path == "[vsyscall]":  # above TASK_SIZE: pagemap cannot see it
        return
    # Rss does not count the zero page, so a VMA with Rss 0 may still hold PTEs:
    # PAGEMAP_SCAN finds them for free; without it, small VMAs are read whole.
    regions = pm.pagemap_scan(vma.start, vma.end, PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
                              PAGE_IS_PRESENT | PAGE_IS_SWAPPED | PAGE_IS_HUGE | PAGE_IS_PFNZERO
                              | PAGE_IS_FILE)
    if regions is not None:
        att.scan_used = True
    if regions is not None and (regions or not vma.stat("Rss")):
        spans = _merge_spans([(s, e) for s, e, _ in regions])
    else:
        if vma.size // cap.page_size * 8 > max_pagemap_bytes:
            if not att.have_smaps or vma.stat("Rss") or vma.stat("Swap"):
                att.warnings.append(f"skipped {vma.start:#x}-{vma.end:#x} ({vma.name}): "
                                    f"{vma.size >> 30} GiB is too large to read without PAGEMAP_SCAN")
            return
        spans = [(vma.start, vma.end)]
        regions = None
    for s, e in spans:
        vfn = s >> shift
        end_vfn = e >> shift
        while vfn < end_vfn:
            n = min(CHUNK_ENTRIES, end_vfn - vfn)
            try:
                data = pm.pread(8 * n, 8 * vfn)
            except ProcessLookupError:
                raise _Gone() from None
            except OSError as err:
                if err.errno == errno.ESRCH:
                    raise _Gone() from None
                raise CaptureError(f"reading /proc/{cap.pid}/pagemap failed: {err.strerror}") from None
            if len(data) < 8 * n:
                _check_alive(reader, cap.pid, started, cap.comm)
                att.warnings.append(f"pagemap stopped short in {vma.start:#x}-{vma.end:#x} "
                                    f"({vma.name}); the rest of it was skipped")
                n = len(data) // 8
                end_vfn = vfn + n
                data = data[: 8 * n]
            # the top byte of each native-endian entry holds PM_PRESENT (0x80) and PM_SWAP (0x40)
            marks = data[_TOP_BYTE::8].translate(_PRESENT_OR_SWAP)
            pos = marks.find(b"\x01")
            if pos >= 0:
                entries = array("Q")
                entries.frombytes(data)
                while pos >= 0:
                    att.vfns.append(vfn + pos)
                    att.pagemap.append(entries[pos])
                    pos = marks.find(b"\x01", pos + 1)
            vfn += n
    vma.count = len(att.vfns) - vma.first
    if regions:
        _note_regions(att, cap, vma, regions)


def _merge_spans(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for s, e in sorted(spans):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def _note_regions(att: _Attempt, cap: Capture, vma: CapturedVMA, regions: Sequence[ScanRegion]) -> None:
    """Record PMD-mapped ranges and zero-page pages that PAGEMAP_SCAN reported."""
    shift = cap.page_shift
    pmd = cap.pmd_size
    for s, e, cat in regions:
        if cat & PAGE_IS_HUGE and not vma.hugetlb:
            a = (s + pmd - 1) & ~(pmd - 1)
            b = e & ~(pmd - 1)
            if a < b:
                if att.pmd_mapped and att.pmd_mapped[-1][1] == a:
                    att.pmd_mapped[-1] = (att.pmd_mapped[-1][0], b)
                else:
                    att.pmd_mapped.append((a, b))
    zero_ranges = [(s >> shift, e >> shift) for s, e, cat in regions if cat & PAGE_IS_PFNZERO]
    if zero_ranges:
        k = 0
        for i in range(vma.first, vma.first + vma.count):
            v = att.vfns[i]
            while k < len(zero_ranges) and zero_ranges[k][1] <= v:
                k += 1
            if k < len(zero_ranges) and zero_ranges[k][0] <= v:
                att.zero.add(i)


def _verify(reader: ProcReader, pm: BinFile, cap: Capture, att: _Attempt, started: float) -> None:
    pid = cap.pid
    try:
        again = parse_maps(reader.read_text(f"/proc/{pid}/maps"), with_stats=False, name=f"/proc/{pid}/maps")
    except (ProcessLookupError, FileNotFoundError):
        raise ProcessGone(f"process {pid} ({cap.comm}) exited during the capture") from None
    except PermissionError:
        again = None
    if again is not None:
        now = {v.start: v.identity() for v in again}
        for v in att.vmas:
            if now.get(v.start) != v.identity():
                att.changed_vmas.add(v.start)
    # pagemap again, run by run of consecutive captured pages
    n = len(att.vfns)
    i = 0
    while i < n:
        j = i + 1
        while j < n and att.vfns[j] == att.vfns[j - 1] + 1 and j - i < CHUNK_ENTRIES:
            j += 1
        try:
            data = pm.pread(8 * (j - i), 8 * att.vfns[i])
        except (ProcessLookupError, OSError):
            data = b""
        cur = array("Q")
        cur.frombytes(data[: len(data) // 8 * 8])
        if len(cur) < j - i:
            _check_alive_or_gone(reader, cap, started)
        for k in range(i, j):
            old = att.pagemap[k]
            new = cur[k - i] if k - i < len(cur) else 0
            if (old ^ new) & PM_IDENTITY_MASK:
                att.changed_pages.add(k)
        i = j
    try:
        _, now_started = reader.identity(pid)
    except ProcessLookupError:
        raise ProcessGone(f"process {pid} ({cap.comm}) exited during the capture") from None
    except PermissionError:
        return
    att.reused = now_started != started


def _check_alive_or_gone(reader: ProcReader, cap: Capture, started: float) -> None:
    try:
        _check_alive(reader, cap.pid, started, cap.comm)
    except _Gone:
        raise ProcessGone(f"process {cap.pid} ({cap.comm}) exited during the capture") from None


# --- putting the capture together -----------------------------------------------------------------
def _assemble(cap: Capture, att: _Attempt, reader: ProcReader, warnings: list[str]) -> None:
    """Copy the attempt into the capture (dropping what changed), then read the
    physical side: kpageflags, kpagecount and folio boundaries."""
    drop_vmas = att.changed_vmas
    drop_pages = set(att.changed_pages)
    vmas: list[CapturedVMA] = []
    zero: set[int] = set()
    for v in att.vmas:
        if v.start in drop_vmas:
            continue
        first = len(cap.vfns)
        for i in range(v.first, v.first + v.count):
            if i in drop_pages:
                continue
            if i in att.zero:
                zero.add(len(cap.vfns))
            cap.vfns.append(att.vfns[i])
            cap.pagemap.append(att.pagemap[i])
        v.first, v.count = first, len(cap.vfns) - first
        vmas.append(v)
    att.zero = zero
    cap.vmas = vmas
    n = len(cap.vfns)
    cap.pfns = array("Q", bytes(8 * n))
    cap.kpageflags = array("Q", bytes(8 * n))
    cap.kpagecount = array("Q", bytes(8 * n))
    for i, entry in enumerate(cap.pagemap):
        cap.pfns[i] = entry & PM_PFN_MASK
    cap.pmd_mapped = [(s, e) for s, e in att.pmd_mapped if any(v.start <= s and e <= v.end for v in vmas)]
    if att.scan_used:
        cap.pmd_source = "pagemap_scan"
    cap.pfns_visible = any(cap.pfns[i] for i in range(n) if cap.pagemap[i] & PM_PRESENT)
    if not cap.pfns_visible:
        return
    try:
        kpf = _FlagCache(reader.open_binary("/proc/kpageflags"))
    except OSError as e:
        warnings.append(f"/proc/kpageflags is unreadable ({e.strerror or e}): folio boundaries "
                        "are inferred from physical contiguity")
        return
    try:
        kpc: _FlagCache | None = _FlagCache(reader.open_binary("/proc/kpagecount"))
    except OSError as e:
        warnings.append(f"/proc/kpagecount is unreadable ({e.strerror or e}): mapcounts unknown")
        kpc = None
    try:
        for i in range(n):
            if cap.pagemap[i] & PM_PRESENT:
                pfn = cap.pfns[i]
                cap.kpageflags[i] = kpf.get(pfn)
                if kpc is not None:
                    cap.kpagecount[i] = kpc.get(pfn)
        cap.flags_visible = True
        cap.folios, bad = discover_folios(cap, kpf)
    finally:
        kpf.f.close()
        if kpc is not None:
            kpc.f.close()
    if bad:
        warnings.append(f"{len(bad)} compound pages changed while being read (first at pfn "
                        f"{min(bad):#x}); they are treated as order-0")


def discover_folios(cap: Capture, kpf: _FlagCache) -> tuple[dict[int, int], set[int]]:
    """Folio (head pfn -> nr pages) of every captured compound page."""
    folios: dict[int, int] = {}
    orders: set[int] = set()
    bad: set[int] = set()
    compound = KPF_COMPOUND_HEAD | KPF_COMPOUND_TAIL

    def known(pfn: int) -> bool:
        for o in orders:
            h = pfn & ~((1 << o) - 1)
            if folios.get(h) == 1 << o:
                return True
        return False

    for i in range(len(cap.vfns)):
        f = cap.kpageflags[i]
        if not f & compound or not cap.pagemap[i] & PM_PRESENT:
            continue
        pfn = cap.pfns[i]
        if known(pfn):
            continue
        head = pfn if f & KPF_COMPOUND_HEAD else _find_head(kpf, pfn)
        if head is None:
            bad.add(pfn)
            continue
        nr = _folio_size(kpf, head)
        if nr < 2 or nr & (nr - 1) or head % nr or not head <= pfn < head + nr:
            bad.add(pfn)
            continue
        folios[head] = nr
        orders.add(nr.bit_length() - 1)
    # Flags read at different moments could describe a folio and a piece of its
    # later split; keep the first of any overlapping pair.
    end = -1
    for head in sorted(folios):
        if head < end:
            bad.add(head)
            del folios[head]
        else:
            end = head + folios[head]
    return folios, bad


def _find_head(kpf: _FlagCache, pfn: int) -> int | None:
    for o in range(1, MAX_FOLIO_ORDER + 1):
        h = pfn & ~((1 << o) - 1)
        if h == pfn:
            continue
        f = kpf.get(h)
        if f & KPF_COMPOUND_HEAD:
            return h
        if not f & KPF_COMPOUND_TAIL:
            return None  # a tail whose aligned neighbours are not: it changed under us
    return None


def _folio_size(kpf: _FlagCache, head: int) -> int:
    limit = 1 << MAX_FOLIO_ORDER
    if head:
        limit = min(limit, head & -head)
    nr = 1
    while nr < limit:
        f = kpf.get(head + nr)
        if not f & KPF_COMPOUND_TAIL or f & KPF_COMPOUND_HEAD:
            break
        nr += 1
    return nr


def infer_pmd_mapped(cap: Capture, require_folio: bool) -> None:
    """Without PAGEMAP_SCAN: take smaps' AnonHugePages / ShmemPmdMapped /
    FilePmdMapped of each VMA as that many PMD-aligned, fully present (and, when
    folios are known, single-folio) PMD ranges, lowest address first."""
    pmd = cap.pmd_size
    nr = pmd // cap.page_size
    shift = cap.page_shift
    out: list[tuple[int, int]] = []
    for v in cap.vmas:
        budget_kb = v.stat("AnonHugePages") + v.stat("ShmemPmdMapped") + v.stat("FilePmdMapped")
        budget = budget_kb * 1024 // pmd
        if not budget or v.hugetlb:
            continue
        idx = {cap.vfns[i]: i for i in cap.pages(v)}
        a = (v.start + pmd - 1) & ~(pmd - 1)
        while a + pmd <= v.end and budget:
            first = idx.get(a >> shift)
            ok = first is not None and first + nr <= v.first + v.count \
                and cap.vfns[first + nr - 1] == (a >> shift) + nr - 1 \
                and all(cap.pagemap[first + k] & PM_PRESENT for k in range(nr))
            if ok and require_folio and first is not None:  # (ok: first is not None)
                head, size = cap.folio_of(cap.pfns[first])
                ok = head == cap.pfns[first] and size == nr \
                    and cap.pfns[first + nr - 1] == head + nr - 1
            if ok:
                out.append((a, a + pmd))
                budget -= 1
            a += pmd
    cap.pmd_mapped = out
    cap.pmd_source = "smaps" if out else cap.pmd_source
