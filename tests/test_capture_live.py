# SPDX-License-Identifier: GPL-2.0-only
"""Capture a real helper process and check it against /proc read independently.

The helper maps and touches: a 4M anonymous region aligned to 2M with
MADV_HUGEPAGE (PMD THPs where the machine allows; one 4K page in the second
2M is then mprotect'ed read-only, which splits that THP's PMD and its VMA),
64 ordinary anonymous pages, a private read-only file mapping, 16 pages made
PROT_NONE after touching, and 16 pages only read (the zero page).

Skips with a reason where PFNs or /proc/kpageflags cannot be read.
"""

import json
import os
import struct
import subprocess
import sys
import textwrap

import pytest

from engine.capture.build import build
from engine.capture.live import capture_process
from engine.capture.model import (
    KPF_ANON,
    KPF_COMPOUND_HEAD,
    KPF_COMPOUND_TAIL,
    KPF_THP,
    KPF_ZERO_PAGE,
    PM_FILE,
    PM_IDENTITY_MASK,
    PM_PRESENT,
    CaptureError,
)
from engine.capture.thpmaps import compare
from engine.decode import decode
from engine.pte import PTE_CONT, PTE_SPECIAL
from tui.cli import main

M2 = 2 << 20
PS = os.sysconf("SC_PAGE_SIZE")

HELPER = textwrap.dedent("""
    import ctypes, json, os, sys, tempfile
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                          ctypes.c_long]
    libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    PS = os.sysconf("SC_PAGE_SIZE")
    M2 = 2 << 20
    RW, ANON_PRIVATE = 3, 0x22
    def mmap(n, prot=RW, flags=ANON_PRIVATE, fd=-1):
        a = libc.mmap(None, n, prot, flags, fd, 0)
        assert a not in (None, ctypes.c_void_p(-1).value), ctypes.get_errno()
        return a
    base = mmap(6 * M2)
    thp = (base + M2 - 1) & ~(M2 - 1)
    libc.madvise(thp, 2 * M2, 14)                       # MADV_HUGEPAGE
    ctypes.memset(thp, 1, 2 * M2)
    libc.mprotect(thp + M2 + M2 // 2, PS, 1)            # split the second THP's PMD and VMA
    small = mmap(64 * PS)
    ctypes.memset(small, 2, 64 * PS)
    f = tempfile.NamedTemporaryFile(prefix="ptlab-capture-")
    f.write(b"x" * (16 * PS)); f.flush()
    filemap = mmap(16 * PS, 1, 2, f.fileno())           # PROT_READ, MAP_PRIVATE
    sum(ctypes.string_at(filemap + k * PS, 1)[0] for k in range(16))
    pn = mmap(16 * PS)
    ctypes.memset(pn, 3, 16 * PS)
    libc.mprotect(pn, 16 * PS, 0)                       # PROT_NONE, pages stay present
    zero = mmap(16 * PS)
    sum(ctypes.string_at(zero + k * PS, 1)[0] for k in range(16))   # read faults: the zero page
    print(json.dumps({"thp": thp, "small": small, "file": filemap, "path": f.name, "protnone": pn,
                      "zero": zero}), flush=True)
    sys.stdin.read()
""")


@pytest.fixture(scope="module")
def helper():
    if sys.platform != "linux":
        pytest.skip("needs Linux /proc")
    p = subprocess.Popen([sys.executable, "-c", HELPER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         text=True)
    try:
        line = p.stdout.readline()
        if not line:
            pytest.skip("the helper process could not map its memory")
        info = json.loads(line)
        info["pid"] = p.pid
        _require_pfns(p.pid, info["small"])
        yield info
    finally:
        p.stdin.close()
        p.wait(timeout=10)
        p.stdout.close()


def _pagemap(pid, va, n=1):
    with open(f"/proc/{pid}/pagemap", "rb") as f:
        f.seek((va // PS) * 8)
        return list(struct.unpack(f"{n}Q", f.read(8 * n)))


def _require_pfns(pid, va):
    try:
        with open("/proc/kpageflags", "rb") as f:
            f.read(8)
    except OSError as e:
        pytest.skip(f"/proc/kpageflags is unreadable ({e.strerror}): needs root")
    if not _pagemap(pid, va)[0] & ((1 << 55) - 1):
        pytest.skip("PFNs in /proc/PID/pagemap read as 0 (needs CAP_SYS_ADMIN)")


def _smaps_kb(pid, start, key):
    cur = None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            head = line.split()[0]
            if "-" in head and ":" not in head:
                cur = int(head.split("-")[0], 16)
            elif cur == start and line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


@pytest.fixture(scope="module")
def cap(helper):
    return capture_process(helper["pid"])


def test_capture_is_clean(cap, helper):
    assert cap.pid == helper["pid"] and cap.page_size == PS
    assert cap.pfns_visible and cap.flags_visible and not cap.synthetic
    assert cap.warnings == []


def test_vmas_match_proc_maps(cap, helper):
    with open(f"/proc/{helper['pid']}/maps") as f:
        want = []
        for line in f:
            parts = line.split(maxsplit=5)
            s, e = (int(x, 16) for x in parts[0].split("-"))
            want.append((s, e, parts[1], int(parts[2], 16), int(parts[4]),
                         parts[5].strip() if len(parts) > 5 else ""))
    got = [(v.start, v.end, v.perms, v.offset, v.inode, v.path) for v in cap.vmas]
    assert got == want
    assert any(v.path == helper["path"] and v.perms == "r--p" for v in cap.vmas)


def test_pages_and_pfns_match_pagemap(cap, helper):
    pid = helper["pid"]
    captured = {cap.vfns[i]: cap.pagemap[i] for i in range(len(cap.vfns))}
    for key, n in (("thp", 2 * M2 // PS), ("small", 64), ("file", 16), ("protnone", 16), ("zero", 16)):
        va = helper[key]
        entries = _pagemap(pid, va, n)
        for k, e in enumerate(entries):
            vfn = va // PS + k
            assert e & PM_PRESENT, f"{key} page {k} not present"
            assert vfn in captured, f"{key} page {k} not captured"
            assert (captured[vfn] ^ e) & PM_IDENTITY_MASK == 0
    for i in range(len(cap.vfns)):
        if cap.present(i):
            assert cap.pfns[i] == cap.pagemap[i] & ((1 << 55) - 1) != 0
    assert all(captured[helper["file"] // PS + k] & PM_FILE for k in range(16))


def test_kpageflags_and_folios(cap, helper):
    # LRU, active, referenced ... move on their own; what a page *is* does not
    stable = KPF_ANON | KPF_COMPOUND_HEAD | KPF_COMPOUND_TAIL | KPF_THP | KPF_ZERO_PAGE
    with open("/proc/kpageflags", "rb") as f:
        for i in range(0, len(cap.vfns), 97):  # a sample, read independently
            if cap.present(i):
                f.seek(cap.pfns[i] * 8)
                assert (struct.unpack("Q", f.read(8))[0] ^ cap.kpageflags[i]) & stable == 0
    z0 = helper["zero"] // PS
    zero = [i for i in range(len(cap.vfns)) if z0 <= cap.vfns[i] < z0 + 16]
    assert len(zero) == 16 and all(cap.kpageflags[i] & KPF_ZERO_PAGE for i in zero)
    for head, nr in cap.folios.items():
        assert nr >= 2 and head % nr == 0


def _thp_ok(cap, helper):
    if not _smaps_kb(helper["pid"], helper["thp"], "AnonHugePages"):
        pytest.skip("no PMD THP was allocated for the MADV_HUGEPAGE region on this machine")
    i = next(i for i in range(len(cap.vfns)) if cap.vfns[i] == (helper["thp"] + M2) // PS)
    if cap.folio_of(cap.pfns[i])[1] != M2 // PS:
        pytest.skip("the second 2M region did not get a THP")


def test_thp_folios_and_pmd_mapping(cap, helper):
    _thp_ok(cap, helper)
    a = helper["thp"]
    assert (a, a + M2) in cap.pmd_mapped
    i = next(i for i in range(len(cap.vfns)) if cap.vfns[i] == a // PS)
    assert cap.folios.get(cap.pfns[i]) == M2 // PS


def test_engine_folds_every_eligible_block_of_the_split_thp(cap, helper):
    _thp_ok(cap, helper)
    a = helper["thp"]
    if PS != 4096:
        pytest.skip("the block arithmetic below is for 4K pages")
    r = compare(build(cap, "4K"))
    by_start = {vc.vma.start: vc for vc in r.vmas}
    first, tail = by_start[a], by_start[a + M2 + M2 // 2 + PS]
    # [a, a+3M): the PMD THP (a PMD entry) + 1M of the split THP: 16 blocks of 64K
    assert (len(first.eligible), first.folded_eligible, first.pmd_leaves) == (16, 16, 1)
    # [a+3M+4K, a+4M): 1M - 4K, the first block is incomplete: 15 blocks
    assert (len(tail.eligible), tail.folded_eligible) == (15, 15)
    assert "anon-thp-pte-partial" in dict(tail.stats)
    sim = build(cap, "16K").sim  # the PMD THP is one 2M contiguous block of 16K pages
    assert all(sim.raw(a + k * 0x4000) & PTE_CONT for k in range(128))


def test_prot_none_zero_page_and_file_descriptors(cap, helper):
    sim = build(cap, "4K").sim
    for k in range(16):
        d = decode(sim.raw(helper["protnone"] + k * PS), sim.g, sim.layout)
        assert d.kind == "present-invalid" and d.fields["protnone"]
        z = sim.raw(helper["zero"] + k * PS)
        assert z & PTE_SPECIAL and decode(z, sim.g, sim.layout).fields["write"] is False
        f = decode(sim.raw(helper["file"] + k * PS), sim.g, sim.layout)
        assert f.kind == "present" and not f.fields["write"] and not f.fields["dirty"]
    s = decode(sim.raw(helper["small"]), sim.g, sim.layout)
    assert s.fields["write"] and s.fields["dirty"]


def test_without_pagemap_scan_the_same_pages_are_read(helper, monkeypatch):
    from engine.capture.procfs import BinFile

    with_scan = capture_process(helper["pid"])
    monkeypatch.setattr(BinFile, "pagemap_scan", lambda self, *a, **k: None)
    without = capture_process(helper["pid"])
    keys = ("thp", "small", "file", "protnone", "zero")

    def pages(c):
        return {c.vfns[i]: c.pagemap[i] & PM_IDENTITY_MASK for i in range(len(c.vfns))
                if any(helper[k] // PS <= c.vfns[i] < (helper[k] + 2 * M2) // PS for k in keys)}

    assert pages(with_scan) == pages(without)
    assert without.pmd_source in ("smaps", "none")
    assert sorted(without.pmd_mapped) == sorted(with_scan.pmd_mapped)


def test_unreadable_pagemap_via_patching(helper, monkeypatch):
    from engine.capture.procfs import ProcReader

    real = ProcReader.open_binary

    def deny(self, path):
        if path.endswith("/pagemap"):
            raise PermissionError(13, "Permission denied", path)
        return real(self, path)

    monkeypatch.setattr(ProcReader, "open_binary", deny)
    with pytest.raises(CaptureError, match=rf"^cannot read /proc/{helper['pid']}/pagemap: permission denied"):
        capture_process(helper["pid"])
    assert main(["capture", str(helper["pid"])]) == 2


def test_cli_json(helper, capsys):
    assert main(["capture", str(helper["pid"]), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["pid"] == helper["pid"] and out["pfns_visible"] and out["warnings"] == []
    assert out["contpte"]["folded_eligible"] <= out["contpte"]["eligible"]
    assert out["totals"]["cont_blocks"] == out["contpte"]["cont_blocks"]
    assert "conclusion" in out["contpte"]


def test_cli_text_report(helper, capsys):
    assert main(["capture", str(helper["pid"]), "--report", "--dump", "ptdump"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"ptlab capture: PID {helper['pid']} (python")
    assert "       PID             START              END PROT   OFFSET   DEV    INODE OBJECT" in out
    assert "\ncontpte: " in out
    # a VMA marker covers the small anonymous region (the kernel may have merged it with a neighbour)
    markers = [ln.split()[1].split("-") for ln in out.splitlines() if ln.startswith("---[ 0x")]
    assert any(int(s, 16) <= helper["small"] < int(e, 16) for s, e in markers)


# --- captures become sessions ------------------------------------------------------------------------

def test_capture_save_reopens_as_a_session_in_the_tui(helper, tmp_path, capsys):
    import asyncio

    from snapshots import open_snapshot
    from tui.app import PtlabApp
    from tui.pilot import settle
    from tui.targets import open_target

    f = tmp_path / "cap.ptsnap"
    assert main(["capture", str(helper["pid"]), "--save", str(f)]) == 0
    capsys.readouterr()
    with open_snapshot(str(f)) as snap:
        prov = snap.header.extra["config"]["capture"]
        assert snap.header.extra["machine"] == "capture" and snap.checkpoint_numbers == [0]
    assert prov["pid"] == helper["pid"] and prov["command"].startswith("python")
    assert prov["pfns"] == "real" and prov["kernel_release"] == os.uname().release
    assert any(v["start"] <= helper["small"] < v["end"] for v in prov["vmas"])
    built = build(capture_process(helper["pid"]), "4K", "v7.0")
    s = open_target(str(f))
    # the reopened state is the capture's: the small region's first page has the same pfn
    va = helper["small"]
    assert s.pte("mm", va) == built.sim.raw(va) and s.pte("mm", va) & 1
    assert main(["replay", str(f), "--verify"]) == 0
    assert "every digest and cost matches" in capsys.readouterr().out

    async def body() -> None:
        app = PtlabApp(s, use_keymap=False)
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(app, pilot)
            assert f"capture of PID {helper['pid']}" in app.main.header_text()
            assert app.main.ctl.errors == []

    asyncio.run(body())


def test_a_damaged_capture_start_is_refused(helper, tmp_path, capsys):
    import sys as _sys

    _sys.path.insert(0, os.path.dirname(__file__))
    import hostile_samples as hs

    f = tmp_path / "cap.ptsnap"
    assert main(["capture", str(helper["pid"]), "--save", str(f)]) == 0
    h, ops, cps = hs.read_parts(f)
    key, blob = cps[0]["pt"]["tables"][0]
    cps[0]["pt"]["tables"][0][1] = bytes(len(blob))  # one table emptied
    g = hs.write_parts(tmp_path / "bad.ptsnap", (h, ops, cps))
    capsys.readouterr()
    assert main(["replay", str(g)]) == 2
    err = capsys.readouterr().err
    assert "does not match the digest its header records" in err and len(err.strip().splitlines()) == 1


def test_tui_pid_opens_the_live_capture(helper, monkeypatch):
    from tui.app import PtlabApp

    seen = {}
    monkeypatch.setattr(PtlabApp, "run", lambda self, *a, **k: seen.setdefault("name", self.session.name))
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)  # `ptlab tui` refuses to start without a tty
    assert main(["tui", "--pid", str(helper["pid"])]) == 0
    assert seen["name"].startswith(f"capture of PID {helper['pid']} (python")


def test_run_from_a_live_capture_end_to_end(helper, tmp_path, capsys):
    """Captures become sessions: capture --save, then a scenario on top of the
    captured layout (ptlab run my.pts --from FILE.ptsnap) -- fork, mprotect,
    a write fault in the child, reclaim -- saved, verified by replay, reopened
    in the TUI."""
    import asyncio

    from engine.mm.audit import audit
    from snapshots import open_snapshot
    from snapshots.start import load_start
    from tui.app import PtlabApp
    from tui.pilot import settle
    from tui.snapshot_files import load_session

    cap_file = tmp_path / "cap.ptsnap"
    assert main(["capture", str(helper["pid"]), "--save", str(cap_file)]) == 0
    capsys.readouterr()
    # the names: p0 and vmaN in address order; the helper's 64-page region is one of them
    assert main(["run", "--from", str(cap_file), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["from"]["kind"] == "capture" and out["from"]["pid"] == helper["pid"]
    vmas = out["processes"]["p0"]["vmas"]
    small = next(v for v in vmas if v["start"] <= helper["small"] < v["end"])
    assert small["name"].startswith("vma") and small["ptes_present"] >= 64
    thp = next(v for v in vmas if v["start"] <= helper["thp"] < v["end"])
    # the captured state, as a machine: the engine's own audit finds it consistent
    start = load_start(str(cap_file))
    assert start.origin["pfns"] == "real"
    from engine.scenario_machine import Machine, MachineConfig

    m = Machine(MachineConfig(**{**start.config, "record": False}))
    m.restore(start.state)
    assert audit(m.kernel.ctx) == [] and m.check_invariants() == []
    assert m.cont_blocks() >= 31  # the split THP's folded blocks stay folded

    pts = tmp_path / "what-if.pts"
    pts.write_text(f"fork child\nmprotect {small['name']} +0 16K r\nswitch child\n"
                   f"touch {thp['name']} +0 64K write\nswitch p0\nreclaim\n")
    out_file = tmp_path / "what-if.ptsnap"
    assert main(["run", str(pts), "--from", str(cap_file), "--save", str(out_file)]) == 0
    text = capsys.readouterr().out
    assert f"the capture of PID {helper['pid']}" in text and "process child" in text
    assert main(["replay", str(out_file), "--verify"]) == 0
    assert "every digest and cost matches" in capsys.readouterr().out
    with open_snapshot(str(out_file)) as snap:
        assert snap.header.extra["machine"] == "scenario-from" and 0 in snap.checkpoint_numbers
    # an earlier --from result is a start too
    assert main(["run", "--from", str(out_file), "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert "child" in again["processes"] and again["from"]["kind"] == "scenario"

    s = load_session(out_file)

    async def body() -> None:
        app = PtlabApp(s, use_keymap=False)
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(app, pilot)
            for _ in range(3):
                await pilot.press("n")
            await settle(app, pilot)
            assert app.main.ctl.errors == [] and s.position.op == 3
            assert f"capture of PID {helper['pid']}" in app.main.header_text()

    asyncio.run(body())
