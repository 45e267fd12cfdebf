# SPDX-License-Identifier: GPL-2.0-only
"""CPU profiles: architectural features, TLB geometry and cost weights.

Features decide what the arch code does (FEAT_TLBIRANGE turns per-page TLBIs
into range TLBIs, BBML2_NOABORT lets contpte_convert() skip its flush, HAFDBS
lets the walker set AF / clear RDONLY instead of faulting). Weights turn
counters into an estimated cycle cost; they are assumptions, each documented
next to its value, and one set serves every workload on that CPU.

A user profile is a TOML file::

    name = "my-cpu"
    base = "neoverse-n1"          # optional: start from a built-in
    [features]
    tlb_range = true
    [tlb]
    entries = 2048
    [weights]
    dsb_ish = 900
"""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from engine.safeio import UnsafeFileError, read_user_text, shown

# Per-counter cycle weights. Keys are counter names from engine.events.count_events.
# The defaults model a small (1-socket, tens of cores) server part; each CPU
# profile overrides what differs. Sources/assumptions:
#  - plain loads/stores of page-table entries hit L1 (the PTE line is hot in
#    the loops that matter): ~1-4 cycles (Arm Neoverse N1 SWOG: L1D load-use 4).
#  - LSE atomics (SWP/CAS) on a cache-resident line: ~20-30 cycles on N1-class
#    cores (N1 SWOG lists CAS/SWP latencies of that order when the line is local).
#  - a broadcast TLBI is cheap to issue but the DSB ISH that completes it waits
#    for every core in the inner-shareable domain to acknowledge the DVM message;
#    on many-core Neoverse systems this is thousands of cycles (Ampere/Arm
#    presentations on DVM cost; the BBML2 series measured contpte_convert()
#    dropping 80% once its TLBI+DSB were elided).
#  - a local (non-broadcast) TLBI + DSB NSH is an order of magnitude cheaper.
#  - exception entry/return for a page fault: ~500-1000 cycles plus handler work.
DEFAULT_WEIGHTS: dict[str, float] = {
    "pte_reads": 2.0,
    "pte_writes": 2.0,  # plain STR of a descriptor
    "pte_xchg": 25.0,  # extra on top of pte_writes: SWP
    "pte_cmpxchg": 25.0,  # extra on top of pte_writes: CAS
    "tlbi_vale1is": 40.0,
    "tlbi_vae1is": 40.0,
    "tlbi_rvale1is": 60.0,
    "tlbi_rvae1is": 60.0,
    "tlbi_vale1": 8.0,
    "tlbi_rvale1": 12.0,
    "tlbi_aside1is": 60.0,
    "dsb_ishst": 30.0,
    "dsb_ish": 1500.0,  # completion of broadcast invalidation
    "dsb_nshst": 5.0,
    "dsb_nsh": 30.0,
    "isb": 20.0,
    "mmu_notifier": 2.0,
    "page_faults": 800.0,
    "tlb_hits": 0.0,
    "tlb_misses": 30.0,  # page-table walk, walk caches warm
    "hw_update": 20.0,  # hardware AF / dirty update is an atomic RMW by the walker
    # call + return of a non-inlined ptep wrapper: BL/RET plus the frame push/pop
    # (STP/LDP x29, x30) and argument moves, ~6 instructions, well predicted
    "call_outofline": 3.0,
    "contpte_check": 4.0,  # the valign/palign tests on the set_ptes(nr==1) fast path
    # bodies of arch functions beyond the descriptor accesses they record:
    # contpte_ptep_get(): per entry pte_dirty()/pte_young() tests and the merge,
    # ~6 instructions x CONT_PTES (16 with 4K pages; v6.17+ may stop early)
    "call:contpte_ptep_get": 32.0,
    # contpte_ptep_get_lockless(): also the pfn and prot consistency test per entry
    "call:contpte_ptep_get_lockless": 48.0,
    # __contpte_try_fold(): page_folio(), the folio range test before any entry is read
    "call:__contpte_try_fold": 10.0,
    # core-mm work the arch layer does not see:
    # per page: the rmap/refcount atomics on struct page (atomic_inc/dec of
    # _mapcount, PageAnonExclusive test-and-clear), two LSE atomics plus accounting
    "mm_page": 60.0,
    # per folio allocated or freed: buddy/pcp lists, memcg charge, lruvec
    "mm_folio": 120.0,
    # per folio batch in the fork copy and zap loops (copy_present_ptes(),
    # zap_present_ptes()): vm_normal_page(), page_folio(), one refcount atomic
    # (fork: folio_ref_add()/folio_get()), rss counters, the loop's bookkeeping --
    # paid once per PTE for order-0 folios, once per 512 PTEs for a PTE-mapped 2M THP
    "mm_batch": 60.0,
    # per folio_pte_batch() loop iteration besides its ptep_get(): clear the
    # ignored bits, compare, the folio bound, pte_batch_hint(), advance (~15
    # instructions); the batch hint's saving is these iterations
    "mm_pte_batch": 5.0,
    "mm_zero_page": 800.0,  # clearing a 4K page (~64 cache lines)
    "mm_copy_page": 900.0,
}


@dataclass(frozen=True)
class TlbGeometry:
    entries: int  # unified (L2) TLB entries
    ways: int
    l1_entries: int  # L1 data TLB entries (fully associative)
    cont_coalesce: bool = True  # one entry may cache a whole contiguous block


@dataclass(frozen=True)
class CpuProfile:
    name: str
    description: str
    hw_af: bool  # FEAT_HAFDBS access flag (TCR_EL1.HA)
    hw_dbm: bool  # FEAT_HAFDBS dirty state (TCR_EL1.HD)
    tlb_range: bool  # FEAT_TLBIRANGE
    ttl: bool  # FEAT_TTL (ARM64_HAS_ARMv8_4_TTL)
    bbml2_noabort: bool  # on the kernel's MIDR allow-list for BBML2_NOABORT
    kpti: bool = False  # kernel unmapped at EL0: every user TLBI issued twice
    repeat_tlbi: bool = False  # ARM64_WORKAROUND_REPEAT_TLBI errata
    erratum_2645198: bool = False  # Cortex-A510: flush before changing exec permission
    tlb: TlbGeometry = TlbGeometry(1280, 5, 48)
    weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    sources: tuple[str, ...] = ()

    def weight(self, counter: str) -> float:
        return self.weights.get(counter, 0.0)

    def features(self) -> dict[str, bool]:
        return {k: getattr(self, k) for k in (
            "hw_af", "hw_dbm", "tlb_range", "ttl", "bbml2_noabort", "kpti", "repeat_tlbi",
            "erratum_2645198")}


def _w(**over: float) -> dict[str, float]:
    w = dict(DEFAULT_WEIGHTS)
    w.update(over)
    return w


CPUS: dict[str, CpuProfile] = {}


def _register(p: CpuProfile) -> CpuProfile:
    CPUS[p.name] = p
    return p


_register(CpuProfile(
    name="neoverse-n1",
    description="Ampere Altra (80x Neoverse N1, Armv8.2): the seed series' main platform",
    hw_af=True, hw_dbm=True,  # N1 implements FEAT_HAFDBS (Neoverse N1 TRM, ID_AA64MMFR1_EL1.HAFDBS=2)
    tlb_range=False, ttl=False,  # TLBI range and TTL hints are Armv8.4; N1 is Armv8.2
    bbml2_noabort=False,
    # KPTI is off here, as in the conformance vectors. A distro kernel with KASLR
    # on a CPU without E0PD (N1 has none) would force it on (kaslr_requires_kpti)
    # and double every user TLBI: make a profile with `kpti = true` to see that.
    kpti=False,
    tlb=TlbGeometry(entries=1280, ways=5, l1_entries=48),  # N1 TRM: 48-entry L1 DTLB, 1280-entry 5-way L2 TLB
    # 80 cores in one inner-shareable domain: every broadcast TLBI is a DVM
    # message the mesh's DVM node forwards to, and collects acknowledgements
    # from, all 80 cores; messages are serialised there. Assumption: ~1000
    # cycles (~0.3 us at 3 GHz) per broadcast TLBI and ~2000 for the DSB ISH that
    # waits for the last one. No published per-instruction figure was found
    # (Linaro Connect MAD24-316, "Why TLBI matters on ARM server", reports
    # broadcast TLBI as a scalability problem on a 96-core Arm server, without
    # a latency); the order of magnitude was chosen consistent with the seed's
    # contpte-basic rows (32 contpte_convert() per 2M folio, 16 TLBIs each, make
    # fork of PTE-mapped THP ~20x slower: several us per convert), so those
    # rows are a consistency check of this weight, not an independent
    # prediction (docs/benchmarks.md).
    weights=_w(dsb_ish=2000.0, tlbi_vale1is=1000.0, tlbi_vae1is=1000.0, tlbi_rvale1is=1000.0,
               tlbi_rvae1is=1000.0, tlbi_aside1is=1000.0),
    sources=("Arm Neoverse N1 TRM (r4p1) sections on the MMU and TLBs",
             "Arm Neoverse N1 Software Optimization Guide, atomic and barrier latencies",
             "Arm CMN-600 TRM: DVM messages are handled by the DVM node (DN), which "
             "broadcasts them and collects completions",
             "Linaro Connect MAD24-316: broadcast TLBI cost grows with the cores of an Arm server",
             "cover letter of the contpte v6 series (Ampere Altra bare metal)"),
))

_register(CpuProfile(
    name="apple-m2",
    description="Apple M2 guest under macOS Hypervisor.framework (the seed's second platform)",
    # Apple cores do not provide hardware AF/DBM to Linux guests [assumption, unsure]:
    # the access flag and dirty state are then managed by software faults.
    hw_af=False, hw_dbm=False,
    tlb_range=True, ttl=True,  # Armv8.5+/8.6-class core: FEAT_TLBIRANGE and FEAT_TTL [assumption]
    bbml2_noabort=False,
    tlb=TlbGeometry(entries=3072, ways=6, l1_entries=160),  # large Apple TLBs [assumption]
    # 8-core SoC: a broadcast TLBI reaches few cores, but completing broadcast
    # maintenance from a guest (DSB ISH waits for all 8 cores, E-cores at lower
    # clocks, under the hypervisor's stage 2) is assumed to take ~0.6 us
    # [assumption, chosen consistent with the seed's contpte-basic M2 rows,
    # which imply ~1-2 us per contpte_convert(); see the N1 note above].
    # Exceptions trap to the hypervisor: costlier page faults. The wide core
    # issues independent loads and ORs in parallel (cheaper gathers) and its LSE
    # atomics are cheap (~10 cycles uncontended) [assumption].
    weights=_w(dsb_ish=2000.0, tlbi_vale1is=100.0, tlbi_vae1is=100.0, tlbi_rvale1is=100.0,
               tlbi_rvae1is=100.0, tlbi_aside1is=100.0, page_faults=1500.0, pte_xchg=15.0,
               pte_cmpxchg=15.0, mm_page=30.0, mm_batch=35.0, mm_pte_batch=4.0, call_outofline=2.0,
               **{"call:contpte_ptep_get": 16.0, "call:contpte_ptep_get_lockless": 24.0}),
    sources=("seed cover letter: M2 VM numbers 'for reference'",
             "Apple M-series: 8-wide decode, ~3 loads/cycle (public microarchitecture analyses)"),
))

_register(CpuProfile(
    name="neoverse-v3",
    description="Neoverse V3 r0p2+ (Armv9.2): on the BBML2_NOABORT allow-list",
    hw_af=True, hw_dbm=True, tlb_range=True, ttl=True, bbml2_noabort=True,
    tlb=TlbGeometry(entries=2048, ways=8, l1_entries=96),
    weights=_w(dsb_ish=1200.0),
    sources=("arm64: Add BBM Level 2 cpu feature (MIDR allow-list: Neoverse-V3 r0p2+)",),
))

_register(CpuProfile(
    name="cortex-x4",
    description="Cortex-X4 r0p3+ (Armv9.2): on the BBML2_NOABORT allow-list",
    hw_af=True, hw_dbm=True, tlb_range=True, ttl=True, bbml2_noabort=True,
    tlb=TlbGeometry(entries=2048, ways=8, l1_entries=96),
    weights=_w(dsb_ish=500.0),
    sources=("arm64: Add BBM Level 2 cpu feature (MIDR allow-list: Cortex-X4 r0p3+)",),
))

_register(CpuProfile(
    name="qemu-max",
    description="QEMU 7.2 TCG '-cpu max': the CPU of the kernels ptlab crosscheck runs",
    # What the guest kernel reports ('CPU features: detected: ...', see docs/crosscheck.md):
    # 'Hardware dirty bit management on CPU0' (FEAT_HAFDBS: access flag and dirty
    # state), 'TLB range maintenance instructions', 'ARMv8.4 Translation Table
    # Level', '52-bit Virtual Addressing (LPA2)' (descriptor bits 9:8 are then
    # OA[51:50], not shareability: the crosscheck compares them as address),
    # E0PD (so no KPTI), no REPEAT_TLBI erratum.
    hw_af=True, hw_dbm=True, tlb_range=True, ttl=True, bbml2_noabort=False,
    # TCG's softmmu TLB is no model of this [assumption]
    tlb=TlbGeometry(entries=1024, ways=4, l1_entries=64),
    weights=_w(),
    sources=("the guest kernel's 'CPU features: detected' lines under qemu-system-aarch64 7.2 -cpu max",),
))

DEFAULT_CPU = "neoverse-n1"


class CpuProfileError(ValueError):
    pass


def load_cpu(spec: str | CpuProfile | dict[str, Any] | None) -> CpuProfile:
    """A built-in name, a path to a TOML profile, a CpuProfile, or a profile
    embedded by value (``cpu_to_plain``'s map, as snapshots store a user's)."""
    if spec is None:
        return CPUS[DEFAULT_CPU]
    if isinstance(spec, CpuProfile):
        return spec
    if isinstance(spec, dict):
        return cpu_from_plain(spec)
    if not isinstance(spec, str):
        raise CpuProfileError(f"a CPU profile is a name or a .toml file, not {type(spec).__name__}")
    if spec in CPUS:
        return CPUS[spec]
    path = Path(spec)
    if spec.endswith(".toml") or os.path.exists(spec):  # os.path: False, not OSError, for a bad name
        return _load_toml(path)
    raise CpuProfileError(f"unknown CPU profile {spec!r} (built-in: {', '.join(sorted(CPUS))}; "
                          "or a .toml file)")


# A user profile's TLB must stay a model of a TLB (the set lists are allocated up front).
MAX_TLB_ENTRIES = 1 << 16
MAX_TLB_WAYS = 256
MAX_PROFILE_BYTES = 1 << 20


def _table(data: dict[str, Any], key: str, path: Path) -> dict[str, Any]:
    t = data.get(key, {})
    if not isinstance(t, dict):
        raise CpuProfileError(f"{path}: [{key}] must be a table")
    return t


def _load_toml(path: Path) -> CpuProfile:
    try:
        # only a regular file, bounded: never a FIFO, a device or /proc/kmsg
        text = read_user_text(path, MAX_PROFILE_BYTES, "CPU profile file")
        data = parse_toml(text)
    except UnsafeFileError as e:
        raise CpuProfileError(str(e)) from None
    except ValueError as e:
        raise CpuProfileError(f"{shown(path)}: {e}") from None
    return _profile_from_data(data, path, str(path))


def parse_toml(text: str) -> dict[str, Any]:
    """tomllib.loads, with nesting bounded (ValueError, not a RecursionError)."""
    if _toml_depth(text) > MAX_TOML_DEPTH:
        raise ValueError(f"invalid TOML: nested more than {MAX_TOML_DEPTH} levels")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"invalid TOML: {e}") from None
    except RecursionError:
        raise ValueError("invalid TOML: nested too deeply") from None


MAX_TOML_DEPTH = 32


def _toml_depth(text: str) -> int:
    """An upper bound of the nesting of arrays and inline tables (brackets and
    braces outside strings are counted; a miscount only makes it larger)."""
    depth = best = 0
    for c in text:
        if c in "[{":
            depth += 1
            best = max(best, depth)
        elif c in "]}":
            depth = max(0, depth - 1)
        elif c == "\n":
            depth = 0 if depth <= 2 else depth  # a table header [a] / [[a]] closes on its line
    return best


def cpu_to_plain(p: CpuProfile) -> dict[str, Any]:
    """A CPU profile by value (plain data), as a snapshot embeds a user's."""
    return {"name": p.name, "description": p.description, "features": p.features(),
            "tlb": {"entries": p.tlb.entries, "ways": p.tlb.ways, "l1_entries": p.tlb.l1_entries,
                    "cont_coalesce": p.tlb.cont_coalesce},
            "weights": dict(sorted(p.weights.items()))}


def cpu_from_plain(d: object) -> CpuProfile:
    """The inverse of cpu_to_plain, checked like a TOML profile (CpuProfileError)."""
    if not isinstance(d, dict):
        raise CpuProfileError("an embedded CPU profile must be a map")
    data: dict[str, Any] = {"base": DEFAULT_CPU, **{k: d[k] for k in ("name", "description", "features",
                                                                      "tlb", "weights") if k in d}}
    name = d.get("name")
    return _profile_from_data(data, Path(str(name) if isinstance(name, str) else "embedded"),
                              "embedded in the snapshot", embedded=True)


def _profile_from_data(data: dict[str, Any], path: Path, source: str, embedded: bool = False) -> CpuProfile:
    base_name = data.get("base", DEFAULT_CPU)
    if not isinstance(base_name, str) or base_name not in CPUS:
        raise CpuProfileError(f"{path}: unknown base CPU profile {base_name!r}")
    base = CPUS[base_name]
    name = data.get("name", path.stem)
    if not isinstance(name, str):
        raise CpuProfileError(f"{path}: name must be a string")
    description = data.get("description", f"user profile from {path}")
    if not isinstance(description, str):
        raise CpuProfileError(f"{path}: description must be a string")
    feats = _table(data, "features", path)
    known = set(base.features())
    upd: dict[str, Any] = {}
    for k, v in feats.items():
        if k not in known:
            raise CpuProfileError(f"{path}: unknown feature {k!r} (known: {', '.join(sorted(known))})")
        if not isinstance(v, bool):
            raise CpuProfileError(f"{path}: feature {k} must be true or false")
        upd[k] = v
    tlb = base.tlb
    if "tlb" in data:
        t = _table(data, "tlb", path)
        for k in ("entries", "ways", "l1_entries"):
            if k in t and (not isinstance(t[k], int) or isinstance(t[k], bool)):
                raise CpuProfileError(f"{path}: [tlb] {k} must be an integer")
        if "cont_coalesce" in t and not isinstance(t["cont_coalesce"], bool):
            raise CpuProfileError(f"{path}: [tlb] cont_coalesce must be true or false")
        tlb = TlbGeometry(entries=t.get("entries", tlb.entries), ways=t.get("ways", tlb.ways),
                          l1_entries=t.get("l1_entries", tlb.l1_entries),
                          cont_coalesce=t.get("cont_coalesce", tlb.cont_coalesce))
        if tlb.entries <= 0 or tlb.ways <= 0 or tlb.l1_entries < 0:
            raise CpuProfileError(f"{path}: TLB sizes must be positive")
        if tlb.entries > MAX_TLB_ENTRIES or tlb.ways > MAX_TLB_WAYS or tlb.l1_entries > MAX_TLB_ENTRIES:
            raise CpuProfileError(f"{path}: TLB too large (at most {MAX_TLB_ENTRIES} entries, "
                                  f"{MAX_TLB_WAYS} ways)")
    weights = dict(base.weights)
    for k, v in _table(data, "weights", path).items():
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v) or v < 0:
            raise CpuProfileError(f"{path}: weight {k} must be a finite, non-negative number")
        weights[k] = float(v)
    if len(weights) > 4096:
        raise CpuProfileError(f"{path}: too many weights")
    if embedded and not 0 < len(name) <= 200:
        raise CpuProfileError("an embedded CPU profile needs a name of 1 to 200 characters")
    return replace(base, name=name, description=description,
                   tlb=tlb, weights=weights, sources=(source,), **upd)
