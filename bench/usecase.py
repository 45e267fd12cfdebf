# SPDX-License-Identifier: GPL-2.0-only
"""The seed's kernel-compilation table, as mechanism.

    python -m bench.usecase [--json]
    ptlab bench usecase [--json]

Runs the built-in ``kbuild`` scenario (a kernel-compile-like mix: make forks
short-lived compilers that map shared text, grow a heap, write objects and
exit) under the seed's three high-level configurations --

* baseline: no mTHP, no contpte (kernel profile ``baseline``, mTHP off);
* mTHP: 16K, 32K and 64K mTHP "always", still no contpte;
* mTHP + contpte: the same with the series applied (``seed-fold``)

-- and reports page faults and TLB misses relative to baseline beside the
seed's measured kern-time and user-time deltas (kernel compilation -j8 on
Ampere Altra, reference A.4). This is what the model explains -- fewer
faults when a fault maps a whole mTHP folio (kernel time), fewer TLB misses
when one TLB entry covers a contiguous block (user time) -- not a time
prediction: the mix is a sketch of a compile, and time also depends on
everything else a compiler does.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.cases import progress_line  # noqa: E402
from engine.scenario import builtin
from engine.scenario_machine import Machine

CONFIGS = (
    ("baseline", "baseline", {"16K": "never", "32K": "never", "64K": "never"}),
    ("mTHP", "baseline", {"16K": "always", "32K": "always", "64K": "always"}),
    ("mTHP + contpte", "seed-fold", {"16K": "always", "32K": "always", "64K": "always"}),
)
# kernel compilation -j8, Ampere Altra: (real, kern, user) % change (cover letter)
SEED_J8 = {"baseline": (0.0, 0.0, 0.0), "mTHP": (-5.0, -39.1, -0.7), "mTHP + contpte": (-6.0, -41.4, -1.5)}
SEED_J80 = {"baseline": (0.0, 0.0, 0.0), "mTHP": (-5.0, -36.6, -0.6), "mTHP + contpte": (-6.1, -38.2, -1.6)}


def measure(kernel: str, mthp: dict[str, str], cpu: str = "neoverse-n1") -> dict:
    sc = builtin("kbuild")
    m = Machine(sc.config(kernel=kernel, cpu=cpu, mthp=mthp, record=False, check="off"))
    for op in sc.ops:
        m.apply(op)
    t = m.counters()
    return {k: t[k] for k in ("page_faults", "tlb_misses", "tlb_hits", "pte_writes", "converts",
                              "cont_blocks", "cycles")}


def run(cpu: str = "neoverse-n1", quiet: bool = False) -> list[dict]:
    res = {}
    for label, kernel, mthp in CONFIGS:
        if not quiet:
            progress_line(f"usecase: kbuild under {label}")
        res[label] = measure(kernel, mthp, cpu)
    base = res["baseline"]
    rows = []
    for label, kernel, _mthp in CONFIGS:
        r = res[label]

        def rel(k: str, r: dict = r) -> float:
            return round((r[k] / base[k] - 1) * 100, 1) if base[k] else 0.0

        real, kern, user = SEED_J8[label]
        rows.append({"config": label, "kernel": kernel, "cpu": cpu,
                     "page_faults": r["page_faults"], "tlb_misses": r["tlb_misses"],
                     "page_faults_pct": rel("page_faults"), "tlb_misses_pct": rel("tlb_misses"),
                     "seed_kern_pct": kern, "seed_user_pct": user, "seed_real_pct": real,
                     "seed_kern_j80_pct": SEED_J80[label][1], "seed_user_j80_pct": SEED_J80[label][2]})
    return rows


def table(rows: list[dict]) -> str:
    out = ["kbuild (kernel-compile-like mix), neoverse-n1: what the model explains, not a time prediction",
           f"  {'config':<16}{'page faults':>13}{'vs base':>9}{'TLB misses':>13}{'vs base':>9}"
           f"{'seed kern':>11}{'seed user':>11}",
           ]
    for r in rows:
        out.append(f"  {r['config']:<16}{r['page_faults']:>13,}{r['page_faults_pct']:>+8.1f}%"
                   f"{r['tlb_misses']:>13,}{r['tlb_misses_pct']:>+8.1f}%"
                   f"{r['seed_kern_pct']:>+10.1f}%{r['seed_user_pct']:>+10.1f}%")
    out.append("  seed: kernel compilation -j8 on Ampere Altra (kern/user time, % change); page faults "
               "drive kernel time, TLB misses user time")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cpu", default="neoverse-n1")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    rows = run(a.cpu)
    if a.json:
        print(json.dumps({"rows": rows}))
    else:
        print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
