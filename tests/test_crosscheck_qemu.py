# SPDX-License-Identifier: GPL-2.0-only
"""ptlab crosscheck against a real kernel: the cached Debian 6.12 and 16K builds under QEMU.

Each test is one boot (10-40 s under TCG on two shared cores), so there are
few. They skip with one line when qemu-system-aarch64, the cross compiler or
the cached kernels are missing (``ptlab crosscheck --setup``; .ci/run does it).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _need_612() -> None:
    from crosscheck import cache
    from crosscheck.kernels import installed_kernels, pick

    if shutil.which("qemu-system-aarch64") is None:
        pytest.skip("qemu-system-aarch64 not installed (apt-get install qemu-system-arm)")
    if shutil.which("aarch64-linux-gnu-gcc") is None:
        pytest.skip("aarch64-linux-gnu-gcc not installed (apt-get install gcc-aarch64-linux-gnu "
                    "libc6-dev-arm64-cross)")
    if not pick(installed_kernels(), "6.12", 4096) or not cache.busybox_path(cache.cache_root()).is_file():
        pytest.skip("no cached Debian 6.12 kernel (run: ptlab crosscheck --setup)")


def _need_16k() -> None:
    from crosscheck import cache
    from crosscheck.kernels import installed_kernels, pick

    _need_612()
    if not pick(installed_kernels(), "newest", 16384) or not cache.busybox_path(cache.cache_root()).is_file():
        pytest.skip("no cached Debian 16K kernel (run: ptlab crosscheck --setup)")


def _ptlab(*argv: str, cwd: Path | None = None, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "tui.cli", "crosscheck", *argv], capture_output=True,
                          text=True, cwd=cwd or ROOT, env=env, timeout=timeout)


def _orphaned_guests() -> list[int]:
    """ptlab's QEMU processes (their initramfs is in a ptlab-guest-* directory) that outlived
    their ptlab: reparented to init. Running ones of parallel tests still have their parent."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if not (d / "comm").read_text().strip().startswith("qemu-system-aa"):
                    continue
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
                if ppid == 1 and b"ptlab-guest-" in (d / "cmdline").read_bytes():
                    out.append(int(d.name))
            except (OSError, ValueError, IndexError):
                continue
    return out


def test_crosscheck_612_json(tmp_path):
    _need_612()
    files = str(ROOT / "tests" / "data" / "crosscheck-file-faults.pts")
    targets = ["check-01-anon-64k-fault", "check-02-anon-32k-twice", "check-10-reclaim-young", files]
    r = _ptlab(*targets, "--debian", "6.12", "--json", "--keep", str(tmp_path / "keep"))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    (k,) = out["kernels"]
    assert k["series"] == "6.12" and k["granule"] == 4096 and k["cpu"] == "qemu-max" and k["error"] is None
    assert len(k["boot_seconds"]) == 1 and 0 < k["boot_seconds"][0] < 600
    res = {t["target"]: t for t in out["targets"]}
    assert list(res) == targets[:3] + ["crosscheck-file-faults"]
    # the first two are the checklist's simplest faults: they agree with the kernel, op by op
    # (PTEs compared: 16 after check-01's touch; 8 + 16 after check-02's two touches)
    for name, ptes in zip(targets[:2], (16, 24), strict=True):
        t = res[name]
        assert t["verdict"] == "agree", t["divergences"]
        assert t["ops_compared"] == t["ops"] and t["ptes_compared"] == ptes
        assert t["engine_seconds"] > 0 and t["guest_seconds"] > 0 and t["error"] is None
    assert res["check-01-anon-64k-fault"]["calls_compared"] == 1  # contpte_set_ptes, once
    # reclaim has no user-space form: it runs as MADV_PAGEOUT on both sides, and says so
    t = res["check-10-reclaim-young"]
    assert t["verdict"] == "agree" and t["ops"] == 3, t["divergences"]  # whole 64K folios swapped out
    assert t["rewrites"] == ["line 7: 'reclaim buf' runs as madvise buf pageout (MADV_PAGEOUT, the closest "
                             "real equivalent) on both sides"]
    # file faults on XFS: retried read faults, fault-around, read(2), MADV_HUGEPAGE, exec
    t = res["crosscheck-file-faults"]
    assert t["verdict"] == "agree" and t["ops"] == 11, t["divergences"]
    assert out["exit_status"] == r.returncode == 0
    keep = tmp_path / "keep" / k["build"]
    assert (keep / "prog.c").is_file() and (keep / "console.log").is_file()
    assert (keep / "out" / "trace-0.txt").is_file() and (keep / "out" / "functions.txt").is_file()
    assert "contpte_convert" in (keep / "out" / "functions.txt").read_text()
    assert not _orphaned_guests()


def test_crosscheck_guest_timeout_is_one_line(tmp_path):
    _need_612()
    r = _ptlab("check-01-anon-64k-fault", "--debian", "6.12", "--timeout", "2")
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("ptlab: crosscheck: debian-6.12")
    assert "guest did not finish within 2 s" in r.stderr
    assert "error" in r.stdout  # the per-target line
    assert not _orphaned_guests()


def test_crosscheck_16k_file_faults_without_damon(tmp_path):
    """Debian's 16K 7.3 build: file faults (readahead orders kept in file_ra_state since v6.16)
    agree, and no kdamond runs in the guest (DAMON_STAT, on by default there, cleared access
    flags between ops: mm/damon/paddr.c damon_pa_mkold())."""
    _need_16k()
    files = str(ROOT / "tests" / "data" / "crosscheck-file-faults.pts")
    r = _ptlab("page-fault3", files, "--debian", "newest", "--granule", "16K", "--json",
               "--keep", str(tmp_path / "keep"))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    (k,) = out["kernels"]
    assert k["granule"] == 16384 and k["error"] is None
    res = {t["target"]: t for t in out["targets"]}
    assert res["page-fault3"]["verdict"] == "agree" and res["page-fault3"]["ops"] == 6
    assert res["crosscheck-file-faults"]["verdict"] == "agree" and res["crosscheck-file-faults"]["ops"] == 11
    guest_out = tmp_path / "keep" / k["build"] / "out"
    assert (guest_out / "kdamond.txt").read_text() == ""  # the check ran, and found none
    assert not (guest_out / "setup-errors.txt").exists()
    assert not _orphaned_guests()


def _need_newest_4k() -> None:
    from crosscheck import cache
    from crosscheck.kernels import installed_kernels, pick

    _need_612()
    if not pick(installed_kernels(), "newest", 4096) or not cache.busybox_path(cache.cache_root()).is_file():
        pytest.skip("no cached Debian 4K 7.x kernel (run: ptlab crosscheck --setup)")


def test_crosscheck_newest_4k_pmd_maps_a_readahead_thp():
    """Debian's newest 4K build (7.3.4): an MADV_HUGEPAGE file mapping's 2M readahead folios
    are PMD-mapped (mm/filemap.c filemap_map_pmd(), mm/memory.c do_set_pmd()), and
    page_vma_mapped_walk() reads lockless during a migration (check-11-migrate-64k,
    pvmw_lockless): the engine agrees on both."""
    _need_newest_4k()
    files = str(ROOT / "tests" / "data" / "crosscheck-file-faults.pts")
    thp = str(ROOT / "tests" / "data" / "crosscheck-file-thp.pts")  # PMD-mapped file THPs under fork,
    # mprotect, munmap and MADV_PAGEOUT
    r = _ptlab("check-11-migrate-64k", files, thp, "--debian", "newest", "--granule", "4K", "--json")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr
    out = json.loads(r.stdout)
    (k,) = out["kernels"]
    assert k["granule"] == 4096 and k["error"] is None and k["profile"] == "v7.3", k
    res = {t["target"]: t for t in out["targets"]}
    assert res["crosscheck-file-faults"]["verdict"] == "agree" and res["crosscheck-file-faults"]["ops"] == 11
    assert res["check-11-migrate-64k"]["verdict"] == "agree"
    assert res["crosscheck-file-thp"]["verdict"] == "agree" and res["crosscheck-file-thp"]["ops"] == 14
    assert not _orphaned_guests()
