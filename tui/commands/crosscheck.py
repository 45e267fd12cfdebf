# SPDX-License-Identifier: GPL-2.0-only
"""ptlab crosscheck TARGET...: the scenarios on real arm64 kernels under QEMU, op by op beside the engine.

Every target is translated into a static aarch64 program (crosscheck.translate),
all targets share one boot per kernel (batches of at most BATCH targets), and
each target's trace is compared with the engine's run of it (crosscheck.observation_diff).
Exit status: 0 every target agrees, 1 any divergence, 2 bad input (an op the
guest cannot express, a missing tool or kernel, a kernel image without what the
guest needs, a guest that fails to boot or times out).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tui.errors import UserError

if TYPE_CHECKING:
    from crosscheck.kernels import KernelBuild
    from crosscheck.runner import TargetResult

NAME = "crosscheck"
HELP = "run scenarios on real arm64 kernels under QEMU and compare them with the engine, op by op"
DESCRIPTION = (
    "Translate each scenario into a static aarch64 program, boot a real kernel with it under "
    "qemu-system-aarch64 -M virt -cpu max (one boot per kernel for all targets), record what the "
    "kernel did op by op (contpte calls, converts, faults, every present PTE, folio structure, swap "
    "entries) and compare it with the engine under the matching kernel profile and the qemu-max CPU "
    "profile. Default kernels: every cached Debian build with the granule's page size. Exit 0 when "
    "every target agrees, 1 on any divergence, 2 for bad input, a missing tool or kernel, or a guest "
    "that does not boot. 'ptlab crosscheck --setup' downloads the kernels and busybox once.")

BATCH = 50  # targets per boot: the guest runs them one after the other
GRANULES = {"4K": 4096, "16K": 16384}
ESSENTIAL = ("contpte", "ftrace", "function tracer", "kprobe events", "THP")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("targets", metavar="TARGET", nargs="*", help="built-in scenario name or .pts file")
    p.add_argument("--setup", action="store_true",
                   help="download the Debian arm64 kernels and busybox into the cache, once")
    p.add_argument("--debian", metavar="SERIES",
                   help="6.12, 7.0, newest or all (default: every cached build with the granule)")
    p.add_argument("--granule", metavar="G", help="4K or 16K pages (default: the targets' own granule "
                   "directive if they agree, else 4K; with --kernel-image, the image's own)")
    p.add_argument("--kernel-image", metavar="IMAGE", help="your own arm64 kernel Image instead of Debian's")
    p.add_argument("--config", metavar="FILE", help="the .config of --kernel-image (else its IKCONFIG)")
    p.add_argument("--kernel", metavar="PROFILE",
                   help="the engine's kernel profile (default: the one for the kernel's release)")
    p.add_argument("--policy", metavar="P",
                   help="with --kernel-image: the fold policy your kernel implements (built-in name or "
                        "FILE.py:CLASS); ptlab's model of it is checked against your kernel")
    p.add_argument("--keep", metavar="DIR", help="keep the program, initramfs, console log and traces here")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--timeout", metavar="S", type=float, help="seconds one boot may take (default: from "
                   "the number and size of the targets)")
    p.add_argument("--limit", metavar="N", type=int, default=5,
                   help="divergences reported per op (default 5)")
    p.add_argument("--features", action="store_true",
                   help="also say which FEATURE_HISTORY rows each kernel confirms: re-run the engine "
                        "with each boolean row flipped against the same trace")
    p.add_argument("--random", metavar="N", type=int, help="crosscheck N generated scenarios instead")
    p.add_argument("--seed", metavar="S", type=int, default=1, help="seed of --random (default 1)")


# ---------------------------------------------------------------------------- text


def esc(value: object) -> str:
    """Text from a file or the guest, safe for a terminal: control characters
    (and every other unprintable character) written as \\xNN / \\uNNNN."""
    s = str(value)
    if s.isprintable():
        return s
    out = []
    for ch in s:
        if ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x100:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(f"\\u{ord(ch):04x}" if ord(ch) < 0x10000 else f"\\U{ord(ch):08x}")
    return "".join(out)


def set_bits(value: int) -> str:
    """The named bits set in a present descriptor (engine.pte.BIT_NAMES_PRESENT)."""
    from engine.pte import BIT_NAMES_PRESENT

    return " ".join(name for bit, name in BIT_NAMES_PRESENT if value >> bit & 1) or "none"


def describe_value(v: Any) -> str:
    from crosscheck.observe import PageInfo

    if v is None:
        return "none"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return f"{v:#018x} ({set_bits(v)})"
    if isinstance(v, PageInfo):
        if v.kind == "S":
            return f"swap entry, offset {v.offset:#x}"
        if v.zero:
            return "the zero page"
        return f"page {v.offset} of a {v.nr}-page folio"
    if isinstance(v, (list, tuple)):
        return ", ".join(esc(x) for x in v) or "none"
    return esc(v)


def divergence_lines(d: Any) -> list[str]:
    where = f"line {d.line}: " if d.line else ""
    out = [f"    op {d.op} ({where}{esc(d.text)}) {d.what}: {esc(d.message)}"]
    if d.kernel is not None or d.engine is not None:
        out.append(f"      kernel {describe_value(d.kernel)}")
        out.append(f"      engine {describe_value(d.engine)}")
    return out


def verdict_text(r: TargetResult) -> str:
    if r.verdict == "agree":
        return "agree"
    if r.verdict == "diverge":
        n = len(r.comparison.divergences) if r.comparison else 0
        return f"{n} divergence{'s' if n != 1 else ''}"
    return "error"


def target_lines(r: TargetResult, width: int, most: int = 10) -> list[str]:
    """The target's line, its error, its first ``most`` divergences and its rewrites."""
    times = f"engine {r.engine_seconds:.2f} s  guest {r.guest_seconds:.2f} s"
    head = f"  {esc(r.name):<{width}}  {verdict_text(r):<14} {r.ops:>5} ops  {times}"
    out = [head]
    if r.error:
        out.append(f"    {esc(r.error)}")
    if r.comparison is not None:
        divs = r.comparison.divergences
        for d in divs[:most]:
            out += divergence_lines(d)
        if len(divs) > most:
            out.append(f"    ... and {len(divs) - most} more (--json lists them all)")
    for note in r.rewrites:
        out.append(f"    rewrite: {esc(note)}")
    return out


# ---------------------------------------------------------------------------- progress


class Progress:
    """Phase messages on stderr (only when it is a terminal), with the seconds
    elapsed in the current phase redrawn every second while the guest runs."""

    def __init__(self, enabled: bool, label: str = "") -> None:
        self.enabled = enabled
        self.label = label
        self.msg = ""
        self.t0 = time.monotonic()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __call__(self, msg: str) -> None:
        if not self.enabled:
            return
        with self._lock:
            self.msg = "guest running the targets" if msg == "guest ready" else msg
            self.t0 = time.monotonic()
            self._draw()
        if self._thread is None:
            self._thread = threading.Thread(target=self._tick, daemon=True)
            self._thread.start()

    @staticmethod
    def width() -> int:
        return max(20, min(shutil.get_terminal_size((80, 24)).columns - 1, 150))

    def _draw(self) -> None:
        secs = time.monotonic() - self.t0
        tail = f"  {secs:.0f} s" if secs >= 1 else ""
        w = self.width()
        line = f"{self.label}: {esc(self.msg)}"[:w - len(tail)] + tail
        sys.stderr.write("\r" + line.ljust(w))
        sys.stderr.flush()

    def _tick(self) -> None:
        while not self._stop.wait(1.0):
            with self._lock:
                self._draw()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self.enabled and self.msg:
            sys.stderr.write("\r" + " " * self.width() + "\r")
            sys.stderr.flush()
        self._stop.clear()
        self.msg = ""


# ---------------------------------------------------------------------------- kernels


@dataclass
class KernelRun:
    """One kernel's share of the work: its build, the engine profile, the results."""

    build: KernelBuild
    profile: str
    results: list[TargetResult] = field(default_factory=list)
    boots: list[float] = field(default_factory=list)
    reduce_boots: list[float] = field(default_factory=list)  # the reproducer rounds' boots
    error: str = ""
    features: dict[str, Any] = field(default_factory=dict)  # --features: field -> FeatureEvidence

    def as_dict(self) -> dict[str, Any]:
        from crosscheck.runner import QEMU_CPU_PROFILE

        b = self.build
        return {"build": b.name, "version": b.version, "series": b.series, "flavour": b.flavour,
                "granule": b.granule, "profile": self.profile, "cpu": QEMU_CPU_PROFILE,
                "boot_seconds": [round(s, 3) for s in self.boots],
                "reduce_boot_seconds": [round(s, 3) for s in self.reduce_boots], "error": self.error or None}


def check_tools() -> None:
    """One line saying what to install, before anything is compiled or booted."""
    from crosscheck import cache
    from crosscheck.setup import HOST_TOOLS

    missing = [(tool, pkg) for tool, pkg in HOST_TOOLS
               if not (Path(tool).exists() if tool.startswith("/") else shutil.which(tool))]
    if missing:
        names = [tool for tool, _ in missing]
        what = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        pkgs = " ".join(pkg for _, pkg in missing)
        raise UserError(f"crosscheck: {what} not found; install: apt-get install {pkgs}")
    bb = cache.busybox_path(cache.cache_root())
    if not bb.is_file():
        raise UserError(f"crosscheck: no guest userland (busybox) in {cache.cache_root()}; "
                        "run: ptlab crosscheck --setup")


def missing_features(build: KernelBuild) -> tuple[list[str], list[str]]:
    """(essential, other) CONFIG options the build lacks, as "CONFIG_X (what)"."""
    from crosscheck.kernels import REQUIRED

    essential: list[str] = []
    other: list[str] = []
    for what, alts in REQUIRED:
        if not any(build.config.get(a) in ("y", "m") for a in alts):
            (essential if what in ESSENTIAL else other).append(f"{'/'.join(alts)} ({what})")
        elif build.flavour == "user" and what == "zram" and build.config.get(alts[0]) == "m":
            other.append("CONFIG_ZRAM=y (zram is a module, which the guest does not load)")
    return essential, other


def user_build(args: argparse.Namespace) -> KernelBuild:
    from crosscheck.kernels import KernelError, user_image

    try:
        build = user_image(args.kernel_image, args.config)
    except KernelError as e:
        raise UserError(f"crosscheck: {esc(e)}") from None
    image = esc(args.kernel_image)
    if not build.config_known:
        raise UserError(f"crosscheck: {image}: no kernel config (give --config FILE, the "
                        "build's .config, or build with CONFIG_IKCONFIG=y)")
    essential, other = missing_features(build)
    if essential:
        raise UserError(f"crosscheck: {image}: the kernel lacks {', '.join(essential)}; "
                        "rebuild with them set")
    if other:
        print(f"ptlab: crosscheck: note: {image} lacks {', '.join(other)}; "
              "the ops that need them will fail in the guest", file=sys.stderr)
    if args.granule and GRANULES.get(args.granule.upper()) != build.granule:
        raise UserError(f"crosscheck: {image} has {build.granule >> 10}K pages, not {esc(args.granule)}")
    return build


def default_granule(scenarios: list[Any]) -> str:
    """The targets' own granule when they all name the same one (4K or 16K), else 4K."""
    named = {str(s.header.get("granule", "4K")).upper() for s in scenarios}
    return named.pop() if len(named) == 1 and named <= set(GRANULES) else "4K"


def debian_builds(args: argparse.Namespace, granule: str = "4K") -> list[KernelBuild]:
    from crosscheck import cache
    from crosscheck.kernels import installed_kernels, pick

    gname = (args.granule or granule).upper()
    want = None if args.debian in (None, "all") else args.debian
    have = installed_kernels()
    builds = pick(have, want, GRANULES[gname])
    if not builds:
        cached = ", ".join(f"{b.series} ({b.granule >> 10}K)" for b in have) or "none"
        which = f"Debian {want} kernel" if want not in (None, "newest") else "Debian kernel"
        raise UserError(f"crosscheck: no cached {which} with {gname} pages in {cache.cache_root()} "
                        f"(cached: {cached}); run: ptlab crosscheck --setup")
    return builds


def engine_profile(args: argparse.Namespace, build: KernelBuild) -> str:
    from crosscheck.runner import CrosscheckError, profile_for

    if args.kernel:
        return str(args.kernel)
    try:
        return profile_for(build.series)
    except CrosscheckError as e:
        raise UserError(f"crosscheck: {e}") from None


# ---------------------------------------------------------------------------- checks of the input


def validate(args: argparse.Namespace) -> None:
    if args.setup:
        if args.targets or args.random is not None:
            raise UserError("crosscheck: --setup takes no targets (run it once, then crosscheck)")
        return
    if args.random is not None:
        if args.targets:
            raise UserError("crosscheck: give TARGETs or --random N, not both")
        if not 1 <= args.random <= 10000:
            raise UserError("crosscheck: --random N needs 1 <= N <= 10000")
    elif not args.targets:
        raise UserError("crosscheck: give one or more TARGETs (scenario names or .pts files), "
                        "--random N, or --setup")
    if args.debian is not None and args.debian not in ("6.12", "7.0", "newest", "all"):
        raise UserError(f"crosscheck: --debian {esc(args.debian)}: expected 6.12, 7.0, newest or all")
    if args.granule is not None and args.granule.upper() not in GRANULES:
        raise UserError(f"crosscheck: --granule {esc(args.granule)}: expected 4K or 16K "
                        "(the Debian builds have no 64K flavour)")
    if args.kernel_image is None:
        for opt in ("config", "policy"):
            if getattr(args, opt) is not None:
                raise UserError(f"crosscheck: --{opt} goes with --kernel-image (a Debian kernel folds "
                                "with the mainline policy and ships its own config)")
    elif args.debian is not None:
        raise UserError("crosscheck: give --debian or --kernel-image, not both")
    if args.timeout is not None and not 0 < args.timeout <= 86400:
        raise UserError("crosscheck: --timeout S needs 0 < S <= 86400")
    if not 1 <= args.limit <= 1000:
        raise UserError("crosscheck: --limit N needs 1 <= N <= 1000")
    if args.kernel is not None:
        from engine.arch.profiles import PROFILES

        if args.kernel not in PROFILES:
            raise UserError(f"crosscheck: unknown kernel profile {esc(args.kernel)!r} "
                            f"(profiles: {', '.join(PROFILES)})")
    if args.policy is not None:
        from engine.policy import PolicyError, check_policy_spec

        try:
            check_policy_spec(args.policy)
        except PolicyError as e:
            raise UserError(f"crosscheck: {e}") from None
    if args.keep is not None and Path(args.keep).exists() and not Path(args.keep).is_dir():
        raise UserError(f"crosscheck: --keep {esc(args.keep)}: not a directory")


def load_targets(targets: list[str]) -> list[Any]:
    from engine.errors import ScenarioError
    from engine.scenario import resolve

    out = []
    for t in targets:
        try:
            out.append(resolve(t))
        except ScenarioError as e:
            raise UserError(esc(e)) from None
    return out


def precheck(scenarios: list[Any], sources: list[str], user_policy: bool) -> None:
    """Refuse what the guest cannot express before anything boots: FILE:LINE: why."""
    from crosscheck.translate import Untranslatable, rewrite_ops

    for scn, src in zip(scenarios, sources, strict=True):
        pol = scn.header.get("policy", "mainline")
        if pol not in (None, "mainline", "kernel", "default") and not user_policy:
            raise UserError(f"{esc(src)}: fold policy {esc(pol)!r}: a Debian kernel folds with the mainline "
                            "heuristic only; to check a kernel of your own that implements it: "
                            f"--kernel-image IMAGE --policy {esc(pol)}")
        try:
            rewrite_ops(list(scn.ops))
        except Untranslatable as e:
            where = f"{src}:{e.line}" if e.line else src
            raise UserError(f"{esc(where)}: {esc(e)}") from None


# ---------------------------------------------------------------------------- running


def run_batches(scenarios: list[Any], kr: KernelRun, args: argparse.Namespace, progress: Progress,
                keep: Path | None, tag: str = "") -> list[TargetResult]:
    """Every scenario on one kernel, BATCH per boot; adds the boots to kr (a tag's to its reduce_boots)."""
    from crosscheck.runner import CrosscheckError, run_targets
    from engine.policy import PolicyError

    out: list[TargetResult] = []
    nb = (len(scenarios) + BATCH - 1) // BATCH
    for b in range(nb):
        chunk = scenarios[b * BATCH:(b + 1) * BATCH]
        kdir = None
        if keep is not None:
            kdir = keep / (kr.build.name.replace("/", "_").replace(":", "_") + tag
                           + (f"-boot{b}" if nb > 1 else ""))
        short = kr.build.version or Path(str(kr.build.image)).name
        progress.label = f"{short}{' reducing' if tag else ''}" + (f" (boot {b + 1}/{nb})" if nb > 1 else "")
        try:
            res = run_targets(chunk, kr.build, profile=kr.profile, policy=args.policy, keep=kdir,
                              timeout=args.timeout, progress=progress, limit=args.limit,
                              features=kr.features if getattr(args, "features", False) and not tag else None)
        except PolicyError as e:
            raise UserError(f"crosscheck: policy {esc(args.policy)}: {esc(e)}") from None
        except CrosscheckError as e:  # a missing tool, a bad PTLAB_XC_PROBES
            raise UserError(f"crosscheck: {esc(e)}") from None
        finally:
            progress.close()
        boot = max((r.boot_seconds for r in res), default=0.0)
        if boot:
            (kr.reduce_boots if tag else kr.boots).append(boot)
        for r in res:
            if r.error_kind == "guest" and not kr.error:
                kr.error = r.error
        out += res
    return out


def exit_status(results: list[TargetResult]) -> int:
    if any(r.verdict == "error" and r.error_kind in ("input", "guest", "trace") for r in results):
        return 2
    if any(r.verdict != "agree" for r in results):
        return 1
    return 0


def first_error(runs: list[KernelRun]) -> str:
    for kr in runs:
        for r in kr.results:
            if r.verdict == "error" and r.error_kind == "guest":
                return f"crosscheck: {esc(kr.build.name)}: {esc(r.error)}"
    for kr in runs:
        for r in kr.results:
            if r.verdict == "error" and r.error_kind in ("input", "trace"):
                return f"crosscheck: {esc(r.error)}"
    return ""


def header_line(kr: KernelRun) -> str:
    from crosscheck.runner import QEMU_CPU_PROFILE

    b = kr.build
    boots = ", ".join(f"{s:.1f} s" for s in kr.boots) or "-"
    extra = f" (+ {len(kr.reduce_boots)} boots reducing)" if kr.reduce_boots else ""
    return (f"{esc(b.name)} ({b.granule >> 10}K pages): engine profile {kr.profile}, "
            f"CPU profile {QEMU_CPU_PROFILE}, boot {boots}{extra}")


def print_human(runs: list[KernelRun], out: Callable[[str], None]) -> None:
    for kr in runs:
        out(header_line(kr))
        width = max((len(esc(r.name)) for r in kr.results), default=10)
        for r in kr.results:
            for line in target_lines(r, min(width, 40)):
                out(line)
        out("")
    results = [r for kr in runs for r in kr.results]
    n = {v: sum(r.verdict == v for r in results) for v in ("agree", "diverge", "error")}
    eng = sum(r.engine_seconds for r in results)
    gst = sum(r.guest_seconds for r in results)
    out(f"{len(results)} crosscheck{'s' if len(results) != 1 else ''} on {len(runs)} kernel"
        f"{'s' if len(runs) != 1 else ''}: {n['agree']} agree, {n['diverge']} diverge, {n['error']} error"
        f"{'s' if n['error'] != 1 else ''}; engine {eng:.2f} s, guest programs {gst:.2f} s")


def reproducer_line(red: dict[str, Any]) -> str:
    same = red["same_signature"]
    also = ""
    if same:
        also = f"; the same in {len(same)} more: {', '.join(same[:8])}{' ...' if len(same) > 8 else ''}"
    what, verb = red["signature"]
    return esc(f"reproducer: {red['path']} ({red['ops']} ops, from {red['scenario']} on {red['kernel']}: "
               f"{what} at {verb}{also})")


def run(args: argparse.Namespace) -> int:
    validate(args)
    if args.setup:
        return do_setup()
    gen: list[Any] = []
    scenarios: list[Any] = []
    sources: dict[str, str] = {}  # scenario name -> how errors name its file
    if args.random is None:
        from tui.commands.run import source_name

        scenarios = load_targets(args.targets)
        sources = {s.name: source_name(t) for s, t in zip(scenarios, args.targets, strict=True)}
        precheck(scenarios, [source_name(t) for t in args.targets], user_policy=args.policy is not None)
    check_tools()
    builds = [user_build(args)] if args.kernel_image else debian_builds(args, default_granule(scenarios))
    keep = Path(args.keep) if args.keep is not None else None
    runs = [KernelRun(b, engine_profile(args, b)) for b in builds]
    if args.random is not None:
        from crosscheck import randomgen

        try:
            gen = randomgen.generate(args.random, args.seed, f"{builds[0].granule >> 10}K", runs[0].profile)
        except (randomgen.GenerationError, ValueError) as e:
            raise UserError(f"crosscheck: --random: {e}") from None
        scenarios = [g.scenario() for g in gen]
    progress = Progress(sys.stderr.isatty())
    for kr in runs:
        kr.results = run_batches(scenarios, kr, args, progress, keep)
    results = [r for kr in runs for r in kr.results]
    for r in results:  # the engine's refusals name the scenario; name its file, like every other error
        if r.error_kind == "input" and r.name in sources and r.error.startswith(f"{r.name}:"):
            r.error = sources[r.name] + r.error[len(r.name):]
    status = exit_status(results)
    extra: dict[str, Any] = {}
    if args.random is not None:
        from crosscheck.reduce import minimize_all

        out_dir = keep if keep is not None else Path.cwd()
        try:
            reds = minimize_all(gen, runs, lambda cands, kr, tag: run_batches(cands, kr, args, progress,
                                                                                keep, tag),
                                  out_dir, args.seed)
        except OSError as e:
            raise UserError(f"crosscheck: cannot write a reproducer in {esc(out_dir)}: "
                            f"{esc(e.strerror or e)}") from None
        extra["random"] = {"n": args.random, "seed": args.seed,
                           "agree": sum(r.verdict == "agree" for r in results),
                           "diverge": sum(r.verdict == "diverge" for r in results),
                           "error": sum(r.verdict == "error" for r in results),
                           "reproducers": [red.as_dict() for red in reds]}
    if getattr(args, "features", False):
        extra["features"] = {kr.build.name: [ev.as_dict() for ev in kr.features.values()] for kr in runs}
    if args.json:
        print(json.dumps({"kernels": [kr.as_dict() for kr in runs], "targets": [r.as_dict() for r in results],
                          **extra, "exit_status": status}))
    else:
        print_human(runs, print)
        if getattr(args, "features", False):
            from crosscheck.features import render

            for kr in runs:
                print("")
                for line in render(esc(kr.build.name), kr.profile, kr.features):
                    print(line)
        if "random" in extra:
            x = extra["random"]
            print(f"random campaign, seed {x['seed']}: {x['n']} scenarios x {len(runs)} kernel(s): "
                  f"{x['agree']} agree, {x['diverge']} diverge, {x['error']} error(s)")
            for red in x["reproducers"]:
                print(reproducer_line(red))
    if status == 2:
        err = UserError(first_error(runs) or "crosscheck: a target could not be checked")
        err.json_done = True
        raise err
    return status


def do_setup() -> int:
    from crosscheck.setup import run_setup

    status = run_setup(stream=sys.stderr)
    return 0 if status == 0 else 2
