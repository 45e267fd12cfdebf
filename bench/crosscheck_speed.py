# SPDX-License-Identifier: GPL-2.0-only
"""ptlab beside the real thing: the engine's time and a real kernel's, per built-in scenario.

    python -m bench.crosscheck_speed [--debian 6.12] [--granule 16K] [--all] [--json] [NAME...]

Runs the built-in scenarios the guest can express (by default those mapping
at most a few MiB; ``--all`` adds the 1 GiB seed micro-benchmarks) through
``ptlab crosscheck`` in one boot, and prints a Markdown table for
docs/benchmarks.md: the engine's run (the scenario in the engine, recording
every event, as the crosscheck does) beside the guest program's run under
QEMU TCG (the program with tracing on, from its start to its exit, as
``/proc/uptime`` sees it in the guest), plus the boot, which a user without
ptlab would pay too.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from crosscheck.kernels import installed_kernels, pick
from crosscheck.runner import profile_for, run_targets
from crosscheck.translate import Untranslatable, rewrite_ops
from engine.scenario import builtin, builtin_names

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

BIG = ("seed-fork-order0", "seed-fork-order9", "seed-munmap-order0", "seed-munmap-order9")


def expressible(names: list[str]) -> list[Any]:
    """The built-ins the guest can express on a Debian kernel (mainline policy, no numa/gup/smmu)."""
    out = []
    for n in names:
        s = builtin(n)
        if s.header.get("policy", "mainline") not in (None, "mainline"):
            continue
        try:
            rewrite_ops(list(s.ops))
        except Untranslatable:
            continue
        out.append(s)
    return out


def measure(names: list[str], debian: str = "6.12", granule: int = 4096) -> dict[str, Any]:
    """One boot of the newest cached Debian build of that series; engine vs guest seconds per target."""
    builds = pick(installed_kernels(), debian, granule)
    if not builds:
        raise SystemExit(f"no cached Debian {debian} kernel; run: ptlab crosscheck --setup")
    build = builds[0]
    scenarios = expressible(names)
    results = run_targets(scenarios, build, profile=profile_for(build.series))
    rows = [{"scenario": r.name, "ops": r.ops, "verdict": r.verdict,
             "engine_seconds": round(r.engine_seconds, 3), "guest_seconds": round(r.guest_seconds, 3)}
            for r in results]
    boot = max((r.boot_seconds for r in results), default=0.0)
    return {"kernel": build.name, "profile": profile_for(build.series), "boot_seconds": round(boot, 2),
            "rows": rows}


def table(d: dict[str, Any]) -> str:
    lines = [f"Kernel {d['kernel']} under QEMU TCG (-cpu max), engine profile {d['profile']}; "
             f"one boot: {d['boot_seconds']:.1f} s.", "",
             "| scenario | ops | engine | guest program | verdict |", "|---|---:|---:|---:|---|"]
    for r in d["rows"]:
        lines.append(f"| `{r['scenario']}` | {r['ops']} | {r['engine_seconds']:.2f} s | "
                     f"{r['guest_seconds']:.2f} s | {r['verdict']} |")
    te = sum(r["engine_seconds"] for r in d["rows"])
    tg = sum(r["guest_seconds"] for r in d["rows"])
    lines.append(f"| total | {sum(r['ops'] for r in d['rows'])} | {te:.2f} s | {tg:.2f} s "
                 f"(+ {d['boot_seconds']:.1f} s boot) | |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.crosscheck_speed", description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help="built-in scenarios (default: every expressible small one)")
    ap.add_argument("--debian", default="6.12", help="6.12, 7.0 or newest (default 6.12)")
    ap.add_argument("--granule", default="4K", choices=("4K", "16K"),
                    help="the build's page size (default 4K)")
    ap.add_argument("--all", action="store_true", help="include the 1 GiB seed micro-benchmarks")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    names = a.names or [n for n in builtin_names() if a.all or n not in BIG]
    d = measure(names, a.debian, 16384 if a.granule == "16K" else 4096)
    print(json.dumps(d) if a.json else table(d))
    return 0


if __name__ == "__main__":
    sys.exit(main())
