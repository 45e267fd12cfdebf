# SPDX-License-Identifier: GPL-2.0-only
"""ptlab capture PID: what would contpte make of a live process's memory?

Captures the process (engine.capture.live), builds the engine state on the
chosen granule (engine.capture.build), and prints the tools/mm/thpmaps
counters with the engine's folded blocks beside them (engine.capture.thpmaps).
"""

from __future__ import annotations

import argparse
import json
import sys

from tui.errors import UserError

NAME = "capture"
HELP = "capture a live process and show what contpte would fold"
DESCRIPTION = (
    "Capture a live process (VMAs, pagemap, kpageflags, folios), map it into the engine through "
    "the ptep API on the chosen granule, and print the tools/mm/thpmaps counters with the engine's "
    "folded contiguous blocks beside them. Reading PFNs and page flags needs root "
    "(CAP_SYS_ADMIN); without it the capture uses synthetic folios and says so.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("pid", metavar="PID", type=int, help="process ID to capture")
    p.add_argument("--granule", default="4K", help="4K, 16K or 64K (default 4K)")
    p.add_argument("--kernel", default="v7.0", help="kernel profile (default v7.0)")
    p.add_argument("--cpu", default="neoverse-n1", help="CPU profile (default neoverse-n1)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--report", action="store_true",
                   help="per-VMA thpmaps-style report with the engine's blocks for each VMA")
    p.add_argument("--dump", choices=("ptdump", "json", "csv"),
                   help="also print the engine's page table in this format")
    p.add_argument("--partial", action="store_true",
                   help="if the process exits mid-capture, keep the VMAs already read")
    p.add_argument("--save", metavar="FILE.ptsnap",
                   help="save the captured state as a session (open it with ptlab tui FILE.ptsnap)")
    p.add_argument("--assume-mthp", metavar="SIZE", action="append", default=[],
                   help="when PFNs are hidden, synthesise anon folios of SIZE (e.g. 64K; repeatable) "
                        "instead of the sizes sysfs enables")


def _size(text: str) -> int:
    t = text.strip().upper().removesuffix("B")
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(t[-1:], 1)
    try:
        n = int(t[:-1] if t[-1:] in "KMG" else t, 0) * mult
    except ValueError:
        raise UserError(f"capture: {text!r} is not a size (use e.g. 64K)") from None
    if n <= 0 or n & (n - 1):
        raise UserError(f"capture: {text!r} is not a power-of-two size")
    return n


def run(args: argparse.Namespace) -> int:
    from engine.arch.profiles import KernelProfileError, get_profile
    from engine.capture.build import build
    from engine.capture.live import capture_process
    from engine.capture.model import CaptureError
    from engine.capture.thpmaps import compare
    from engine.granule import granule
    from engine.hw.cpus import CpuProfileError, load_cpu

    try:
        g = granule(args.granule)
        profile = get_profile(args.kernel)
        load_cpu(args.cpu)
    except (ValueError, KernelProfileError, CpuProfileError, OSError) as e:
        raise UserError(f"capture: {e}") from None
    if args.json and args.report:
        raise UserError("capture: --report is the text report; --json already has every VMA")
    sizes = [_size(s) for s in args.assume_mthp] or None
    try:
        cap = capture_process(args.pid, partial=args.partial, mthp_sizes=sizes)
    except CaptureError as e:
        raise UserError(f"capture: {e}") from None
    for w in cap.warnings:
        print(f"ptlab: warning: {w}", file=sys.stderr)
    built = build(cap, g, profile.name, cpu=args.cpu)
    if args.save:
        save_capture(built, args.save, args.cpu)
    report = compare(built)
    if args.json:
        print(json.dumps(capture_json(cap, built, report, args.dump)))
        return 0
    print("\n".join(text_report(cap, built, report, per_vma=args.report)))
    if args.dump:
        print(dump(built, args.dump), end="")
    return 0


def save_capture(built, path: str, cpu: str) -> None:
    """The captured state as a snapshot: checkpoint 0 is the state, the header the provenance."""
    from engine.capture.session import capture_session
    from snapshots import SnapshotError
    from snapshots.sessions import save_session

    if not path.endswith(".ptsnap"):
        raise UserError(f"capture: --save {path!r}: the file name must end in .ptsnap")
    try:
        save_session(capture_session(built, cpu), path)
    except SnapshotError as e:
        raise UserError(str(e)) from None
    print(f"ptlab: saved the capture to {path}", file=sys.stderr)


def capture_to_session(pid: int, *, granule: str, kernel: str, cpu: str, command: str = "capture"):
    """Capture PID and return the session that starts from it (for ptlab tui --pid)."""
    from engine.arch.profiles import KernelProfileError, get_profile
    from engine.capture.build import build
    from engine.capture.live import capture_process
    from engine.capture.model import CaptureError
    from engine.capture.session import capture_session
    from engine.granule import granule as to_granule
    from engine.hw.cpus import CpuProfileError, load_cpu

    try:
        g = to_granule(granule)
        profile = get_profile(kernel)
        load_cpu(cpu)
    except (ValueError, KernelProfileError, CpuProfileError, OSError) as e:
        raise UserError(f"{command}: {e}") from None
    try:
        cap = capture_process(pid)
    except CaptureError as e:
        raise UserError(f"{command}: {e}") from None
    s = capture_session(build(cap, g, profile.name, cpu=cpu), cpu)
    s.warnings.extend(cap.warnings)
    return s


# --- output -------------------------------------------------------------------------------------------
def _kb(n: int) -> str:
    if n >= 1 << 20 and not n & ((1 << 20) - 1):
        return f"{n >> 20}M"
    return f"{n >> 10}K"


def _n(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def describe(cap) -> list[str]:
    s = cap.summary()
    info = cap.info
    thp = info.get("thp_enabled", "unavailable")
    sizes = [f"{k[5:]}={v}" for k, v in info.items() if k.startswith("mthp_") and v not in ("never", "")]
    lines = [
        f"ptlab capture: PID {cap.pid} ({cap.comm}), Linux {info.get('kernel_release', '?')} "
        f"{info.get('machine', '?')}, {_kb(cap.page_size)} pages; THP enabled={thp}"
        + (f" ({', '.join(sizes)})" if sizes else ""),
        f"  {_n(s['vmas'], 'VMA')}, {_n(s['pages_present'], 'page')} present, "
        f"{s['pages_swapped']} swapped, {_n(s['large_folios'], 'large folio')}"
        f"{' (synthetic)' if cap.synthetic else ''}, {_n(s['pmd_mapped'], 'PMD-mapped THP')}"
        + {"pagemap_scan": " (PAGEMAP_SCAN)", "smaps": " (from smaps)"}.get(cap.pmd_source, ""),
    ]
    return lines


def text_report(cap, built, report, per_vma: bool = False) -> list[str]:
    from engine.capture.thpmaps import HEADER, counted, format_stats, format_vma, rollup

    lines = describe(cap)
    st = built.plan.stats()
    lines.append(f"  engine: {built.granule.name} granule, kernel {report.kernel}: "
                 f"{_n(st['set_ptes_calls'], 'set_ptes call')} ({st['set_ptes_batched']} whole-folio), "
                 f"{_n(st['pmd_entries'], 'PMD entry', 'PMD entries')}, "
                 f"{_n(st['folios'], 'folio')} registered"
                 + (f", {st['host_pages_unmapped']} host pages not mappable" if st["host_pages_unmapped"]
                    else ""))
    for why, n in sorted(built.plan.notes.items(), key=lambda kv: (-kv[1], kv[0])):
        lines.append(f"    {n} host pages: {why}")
    orders = (report.cont_order,) if report.cont_order else ()
    cont = f" --cont {_kb(report.block_size)}" if orders else ""
    lines.append("")
    if per_vma:
        lines.append(f"thpmaps --pid {cap.pid}{cont}, with ptlab's blocks after each VMA:")
        lines.append(HEADER)
        for vc in report.vmas:
            lines.append(format_vma(cap, vc.vma))
            lines.extend(format_stats(vc.stats, vc.tot_anon, vc.tot_file))
            if counted(vc.vma) and (vc.eligible or vc.folded or vc.pmd_leaves):
                extra = f", {_n(vc.pmd_leaves, 'PMD entry', 'PMD entries')}" if vc.pmd_leaves else ""
                lines.append(f"ptlab-{built.granule.name}-contpte-{_kb(report.block_size)}: "
                             f"{len(vc.eligible)} eligible, {vc.folded_eligible} folded"
                             + (f", {len(vc.folded) - vc.folded_eligible} more folded" if
                                len(vc.folded) > vc.folded_eligible else "") + extra)
                for why, n in sorted(vc.reasons.items()):
                    lines.append(f"    not folded: {n} x {why}")
    else:
        stats, a, f = rollup(cap, orders)
        lines.append(f"thpmaps --pid {cap.pid}{cont} --rollup:")
        lines.extend(format_stats(stats, a, f) or ["(no THP memory)"])
    lines.append("")
    if report.pmd_included and cap.pmd_mapped:
        lines.append(f"(on the {built.granule.name} granule a PMD is {_kb(built.granule.pmd_size)}: the "
                     f"host's PMD-mapped THPs are contiguous blocks here, so they count as eligible)")
    lines.append("contpte: " + report.conclusion())
    return lines


def capture_json(cap, built, report, dump_format: str | None = None) -> dict:
    from engine.capture.thpmaps import rollup

    orders = (report.cont_order,) if report.cont_order else ()
    stats, a, f = rollup(cap, orders)
    out = {
        "pid": cap.pid, "comm": cap.comm, "page_size": cap.page_size, "info": cap.info,
        "granule": built.granule.name, "kernel": report.kernel,
        "pfns_visible": cap.pfns_visible, "flags_visible": cap.flags_visible,
        "synthetic": cap.synthetic, "synthesis": cap.synthesis, "pmd_source": cap.pmd_source,
        "warnings": list(cap.warnings), "capture": cap.summary(), "plan": built.plan.stats(),
        "thpmaps_rollup": {k: v for k, (_, v) in stats.items()},
        "totals": report.counters,
        "contpte": report.as_dict(),
    }
    if dump_format == "json":
        from engine.export import to_json

        out["dump"] = to_json(built.sim.mm.pt, built.sim.layout, built.vmas)
    elif dump_format:
        out["dump"] = dump(built, dump_format)
    return out


def dump(built, fmt: str) -> str:
    from engine.export import ptdump, to_csv, to_json

    pt = built.sim.mm.pt
    layout = built.sim.layout
    if fmt == "ptdump":
        return ptdump(pt, layout, built.vmas)
    if fmt == "csv":
        return to_csv(pt, layout, built.vmas)
    return json.dumps(to_json(pt, layout, built.vmas)) + "\n"
