# SPDX-License-Identifier: GPL-2.0-only
"""One crosscheck: targets × one kernel build, sharing one boot.

For each target the engine runs the scenario (translate.plan, timed), the
targets are compiled together into one static aarch64 program, the kernel
boots once under QEMU and runs each target in turn (guest_script), and each
target's trace is compared op by op with the engine's run (compare).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from crosscheck import cache
from crosscheck.features import FeatureEvidence, gather
from crosscheck.guest_script import guest_script
from crosscheck.observation_diff import Comparison, compare_runs
from crosscheck.observe import EngineObserver
from crosscheck.trace import KernelRun, TraceError, parse_pagemap, parse_trace
from crosscheck.translate import GUEST_FILE_DIR, Plan, Untranslatable, c_source, plan

CROSS_CC = "aarch64-linux-gnu-gcc"
QEMU_CPU_PROFILE = "qemu-max"


class CrosscheckError(Exception):
    """Bad input or a missing tool; the message is one line (exit status 2)."""


@dataclass
class TargetResult:
    name: str
    kernel: str  # the build's name
    profile: str  # the engine's kernel profile
    granule: int
    verdict: str = "agree"  # "agree", "diverge" or "error"
    comparison: Comparison | None = None
    rewrites: list[str] = field(default_factory=list)
    error: str = ""
    # "input" (cannot be expressed, or not on this build), "guest" (boot, timeout, guest setup),
    # "trace"; "" otherwise (an op the guest program could not run is a divergence)
    error_kind: str = ""
    ops: int = 0
    engine_seconds: float = 0.0
    guest_seconds: float = 0.0
    boot_seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        c = self.comparison
        return {
            "target": self.name, "kernel": self.kernel, "profile": self.profile, "granule": self.granule,
            "verdict": self.verdict, "error": self.error or None, "error_kind": self.error_kind or None,
            "ops": self.ops,
            "ops_compared": c.ops_compared if c else 0, "ptes_compared": c.ptes_compared if c else 0,
            "calls_compared": c.calls_compared if c else 0,
            "divergences": [d.as_dict() for d in c.divergences] if c else [],
            "rewrites": self.rewrites, "engine_seconds": round(self.engine_seconds, 3),
            "guest_seconds": round(self.guest_seconds, 3), "boot_seconds": round(self.boot_seconds, 3),
        }


def profile_for(series: str) -> str:
    """The engine's kernel profile for a kernel release series ("6.12", "7.0", ...)."""
    from engine.arch.profiles import PROFILES

    want = f"v{series}"
    if want in PROFILES:
        return want
    try:
        key = tuple(int(x) for x in series.split("."))
    except ValueError:
        raise CrosscheckError(f"cannot tell the kernel release of this build ({series!r}); "
                              "name a profile with --kernel") from None
    best = None
    for name in PROFILES:
        if not name.startswith("v"):
            continue
        v = tuple(int(x) for x in name[1:].split("."))
        if v <= key and (best is None or v > best[0]):
            best = (v, name)
    if best is None:
        raise CrosscheckError(f"no engine profile for kernel {series}")
    return best[1]


def _env_names(var: str, pattern: str, what: str) -> tuple[str, ...]:
    """The comma-separated names in environment variable *var*, each matching *pattern*
    (they go into the guest's shell script, so nothing else is accepted)."""
    names = tuple(f for f in os.environ.get(var, "").split(",") if f)
    bad = [n for n in names if not re.fullmatch(pattern, n)]
    if bad:
        raise CrosscheckError(f"{var}: {bad[0][:40]!r} is not {what}")
    return names


_SYMBOL = r"[A-Za-z_][A-Za-z0-9_.]{0,127}"
_EVENT_WORD = r"[A-Za-z_][A-Za-z0-9_]{0,63}"


def extra_probes() -> tuple[str, ...]:
    """PTLAB_XC_PROBES=fn1,fn2: more kernel functions marked in the guest's trace (kprobe
    events ptlab/x*, ignored by the comparison), for reading a kept trace by hand."""
    return _env_names("PTLAB_XC_PROBES", _SYMBOL, "a kernel symbol name")


def stack_probes() -> tuple[str, ...]:
    """PTLAB_XC_STACKS=fn1,fn2: contpte functions (or PTLAB_XC_PROBES ones) whose every hit in
    the guest's trace is followed by the kernel stack that made it, to find the call site of a
    call the engine does not make."""
    return _env_names("PTLAB_XC_STACKS", _SYMBOL, "a kernel symbol name")


def extra_events() -> tuple[str, ...]:
    """PTLAB_XC_EVENTS=group[:event],...: kernel trace events enabled in the guest's trace
    (e.g. readahead for the page_cache_*_ra tracepoints, filemap:mm_filemap_add_to_page_cache),
    ignored by the comparison, for reading a kept trace by hand."""
    return _env_names("PTLAB_XC_EVENTS", f"{_EVENT_WORD}(:{_EVENT_WORD})?",
                      "a trace event group or group:event")


def build_profile(name: str, build: Any) -> Any:
    """The kernel profile ``name`` with the build's own configuration
    (CONFIG_ARM64_PA_BITS) filled in."""
    from dataclasses import replace

    from engine.arch.profiles import get_profile

    prof = get_profile(name)
    pa = build.config.get("CONFIG_ARM64_PA_BITS")
    if pa is None and build.flavour.startswith("arm64"):
        # A Debian build whose config is not in the archive any more (7.0.13): Debian's
        # arm64 configs set CONFIG_ARM64_PA_BITS=52 in every build that has one (6.12, 7.3)
        pa = "52"
    try:
        pa_bits = int(pa) if pa is not None else prof.pa_bits
    except ValueError:
        pa_bits = prof.pa_bits
    return replace(prof, pa_bits=pa_bits)


def compile_program(plans: list[Plan], workdir: Path) -> bytes:
    if shutil.which(CROSS_CC) is None:
        raise CrosscheckError(f"{CROSS_CC} not found; install it: apt-get install gcc-aarch64-linux-gnu "
                              "libc6-dev-arm64-cross")
    runtime = resources.files("crosscheck").joinpath("runtime.c").read_text()
    (workdir / "runtime.c").write_text(runtime)
    (workdir / "prog.c").write_text(c_source(plans))
    cmd = [CROSS_CC, "-O1", "-static", "-w", "-o", str(workdir / "prog"), str(workdir / "prog.c")]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if r.returncode:
        first = (r.stderr.strip().splitlines() or ["?"])[0]
        raise CrosscheckError(f"the guest program did not compile (a bug in ptlab): {first}")
    return (workdir / "prog").read_bytes()


def run_targets(scenarios: list[Any], build: Any, *, profile: str | None = None, policy: str | None = None,
                cpu: str = QEMU_CPU_PROFILE, keep: Path | None = None, timeout: float | None = None,
                progress: Callable[[str], None] | None = None, limit: int = 5,
                features: dict[str, FeatureEvidence] | None = None) -> list[TargetResult]:
    """Crosscheck scenarios against one kernel build in one boot. With ``features``,
    also re-run each compared target with every boolean FEATURE_HISTORY row
    flipped and gather what the kernel's trace says about each row."""
    from crosscheck.guest import GuestError, boot_guest

    say = progress or (lambda _m: None)
    prof = profile or profile_for(build.series)
    kernel_profile = build_profile(prof, build)
    gname = {4096: "4K", 16384: "16K", 65536: "64K"}[build.granule]
    has_zram = any(name.startswith("zram") for name in build.module_names())
    xfs = build.xfs_support()
    xfs_image = cache.xfs_image(cache.cache_root())
    results: list[TargetResult] = []
    plans: list[Plan] = []
    observers: list[EngineObserver] = []
    planned: list[Any] = []  # the scenario of each plan, for --features
    index: list[int] = []  # result index of each plan
    for scn in scenarios:
        res = TargetResult(scn.name, build.name, prof, build.granule)
        results.append(res)
        obs = EngineObserver()
        t0 = time.perf_counter()
        try:
            scn_for_run = scn
            if policy:
                scn_for_run.header["policy"] = policy
            p = plan(scn_for_run, kernel_profile, cpu, gname, policy_ok=bool(policy), collect=obs)
        except Untranslatable as e:
            res.verdict, res.error = "error", f"{scn.name}:{e.line}: {e}" if e.line else f"{scn.name}: {e}"
            res.error_kind = "input"
            continue
        res.engine_seconds = time.perf_counter() - t0
        res.rewrites, res.ops = p.rewrites, len(p.ops)
        if p.needs_swap and not has_zram:  # the build cannot run it: like a kernel without contpte
            res.verdict, res.error_kind = "error", "input"
            res.error = (f"{scn.name}: swapping needs zram, and {build.name} has no modules "
                         "(the archive no longer carries them for this build)")
            continue
        no_xfs = _no_xfs_reason(build, xfs, xfs_image) if p.files else None
        if no_xfs:
            res.verdict, res.error_kind = "error", "input"
            res.error = (f"{scn.name}: maps files, which need XFS in the guest "
                         f"(a tmpfs has order-0 folios only), {no_xfs}")
            continue
        plans.append(p)
        observers.append(obs)
        planned.append(scn_for_run)
        index.append(len(results) - 1)
    if not plans:
        return results
    tmp = Path(tempfile.mkdtemp(prefix="ptlab-xc-"))
    try:
        say(f"compiling {len(plans)} guest program(s)")
        prog = compile_program(plans, tmp)
        if keep is not None:
            keep.mkdir(parents=True, exist_ok=True)
            shutil.copy(tmp / "prog.c", keep / "prog.c")
            shutil.copy(tmp / "runtime.c", keep / "runtime.c")
            shutil.copy(tmp / "prog", keep / "prog")
        numa = 2 if any(p.needs_numa for p in plans) else 1
        mapped = max(sum(e - s for _, s, e in d) for p in plans for d in (p.dumps or [[]]) or [[]]) \
            if any(p.dumps for p in plans) else 0
        memory = 2048 if mapped < (512 << 20) else 4096
        budget = timeout or (240 + 60 * len(plans) + 60 * (mapped >> 28))
        try:
            extra = extra_probes()
            script = guest_script(len(plans), extra_probes=extra, extra_events=extra_events(),
                                  stack_probes=stack_probes())
            disk = xfs_image if any(p.files for p in plans) else None
            run = boot_guest(build, script, {"/ptlab/prog": (prog, 0o755)}, memory_mb=memory,
                             numa_nodes=numa, timeout_s=budget, keep_dir=keep, progress=say, disk=disk)
        except GuestError as e:
            for i in index:
                results[i].verdict, results[i].error, results[i].error_kind = "error", str(e), "guest"
            return results
        functions = {f.split(".", 1)[0] for f in run.outputs.get("functions.txt", b"").decode().split()}
        setup_errors = run.outputs.get("setup-errors.txt", b"").decode().strip()
        lpa2 = any("LPA2" in f for f in run.cpu_features)
        fs = guest_fs(run.outputs)
        for t, (p, obs, i) in enumerate(zip(plans, observers, index, strict=True)):
            res = results[i]
            res.boot_seconds = run.boot_seconds
            try:
                kr = _kernel_run(run.outputs, t, p)
            except TraceError as e:
                res.verdict, res.error, res.error_kind = "error", str(e), "trace"
                continue
            res.guest_seconds = _guest_time(run.outputs, t)
            if setup_errors:
                res.verdict, res.error = "error", f"guest setup: {setup_errors.splitlines()[0]}"
                res.error_kind = "guest"
                continue
            if p.files and fs != "xfs":
                why = run.outputs.get("mount-error.txt", b"").decode(errors="replace").strip()
                res.verdict, res.error_kind = "error", "guest"
                res.error = (f"{p.name}: maps files, but the guest's {GUEST_FILE_DIR} is "
                             f"{fs or 'unknown'}, not xfs" + (f" ({why.splitlines()[0]})" if why else ""))
                continue
            if not kr.completed:
                log = run.outputs.get(f"prog-{t}.log", b"").decode(errors="replace").strip()
                res.verdict = "error"
                res.error = kr.error or (log.splitlines()[-1] if log else "the guest program did not finish")
                if kr.error:
                    res.error = f"the guest could not run {kr.error}"
            texts = [(o.line, o.text) for o in p.ops]
            res.comparison = compare_runs(kr.ops, obs.ops, texts, functions, p.procs,
                                          build.granule.bit_length() - 1, limit, lpa2)
            if res.verdict != "error":
                res.verdict = "agree" if res.comparison.agrees else "diverge"
                if features is not None:
                    gather(features, p.name, res.comparison.agrees, kernel_profile,
                           _rerun_under(planned[t], kr, texts, functions, p.procs, build, cpu, gname,
                                        bool(policy), limit, lpa2))
        return results
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _rerun_under(scn: Any, kr: Any, texts: list[tuple[int, str]], functions: set[str], procs: Any,
                 build: Any, cpu: str, gname: str, policy_ok: bool, limit: int,
                 lpa2: bool) -> Callable[[Any], bool | None]:
    """rerun(profile): does the engine under ``profile`` agree with this kernel trace?"""
    def rerun(profile: Any) -> bool | None:
        obs = EngineObserver()
        try:
            plan(scn, profile, cpu, gname, policy_ok=policy_ok, collect=obs)
        except Exception:  # noqa: BLE001 -- a flipped row may make a profile the engine refuses
            return None
        return compare_runs(kr.ops, obs.ops, texts, functions, procs,
                            build.granule.bit_length() - 1, limit, lpa2).agrees
    return rerun


def guest_fs(outputs: dict[str, bytes]) -> str:
    """The filesystem type of the guest's /mnt/ptlab, from /out/fs.txt (its /proc/mounts line)."""
    words = outputs.get("fs.txt", b"").decode(errors="replace").split()
    return words[2] if len(words) > 2 else ""


def _no_xfs_reason(build: Any, xfs: bool | None, image: Path) -> str | None:
    """Why a file-mapping target cannot have XFS on *build*, None if it can (or may: a user's
    Image without a config is left to the guest to tell)."""
    if xfs is False:
        if build.modules_dir is None:
            return (f"and {build.name} has no modules (the archive no longer carries them for this "
                    "build), so no xfs/virtio_blk")
        return f"and {build.name}'s cached modules lack xfs/virtio_blk; run: ptlab crosscheck --setup"
    if not image.is_file():
        return f"and there is no XFS image at {image}; run: ptlab crosscheck --setup"
    return None


def _kernel_run(outputs: dict[str, bytes], t: int, p: Plan) -> KernelRun:
    stats = outputs.get(f"stats-{t}.txt", b"").decode()
    for line in stats.splitlines():
        key, _, val = line.partition(":")
        if key.strip() in ("overrun", "dropped events") and val.strip() not in ("", "0"):
            raise TraceError(f"the guest's trace buffer lost events ({key.strip()}: {val.strip()}); "
                             "the scenario is too large for one trace")
    trace = outputs.get(f"trace-{t}.txt")
    if trace is None:
        raise TraceError("the guest left no trace (it stopped before this target)")
    kr = parse_trace(trace.decode(errors="replace").splitlines(), t, p)
    parse_pagemap(outputs.get(f"pagemap-{t}.txt", b"").decode(errors="replace").splitlines(), kr)
    return kr


def _guest_time(outputs: dict[str, bytes], t: int) -> float:
    try:
        a, b = outputs.get(f"time-{t}.txt", b"").decode().split()[:2]
        return float(b) - float(a)
    except ValueError:
        return 0.0
