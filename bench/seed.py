# SPDX-License-Identifier: GPL-2.0-only
"""The seed series' micro-benchmark tables, as the cost model sees them.

    python -m bench.seed [--size 1G] [--jobs 2] [--json]
    ptlab bench seed [--size 1G] [--json]

Runs the built-in scenarios seed-fork-order0, seed-fork-order9,
seed-munmap-order0 and seed-munmap-order9 under the kernel profiles
baseline, seed-basic, seed-batch, seed-inline and seed-fold on the
neoverse-n1 (Ampere Altra) and apple-m2 CPU profiles, and prints the
estimated cost of the measured op (the fork or the munmap, not the setup
before it) relative to baseline, beside the seed's measured mean and stdev
(cover letter of the contpte v6 series; ../shared/reference A.4).

``--size`` shrinks the 1 GiB mapping for speed: every count in the measured
op is proportional to the size, so the relative costs do not change
(README results are at 1 GiB).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.cases import progress_line  # noqa: E402
from engine.scenario import builtin, parse
from engine.scenario_machine import Machine

BENCHMARKS = (("fork", 0, "seed-fork-order0"), ("fork", 9, "seed-fork-order9"),
              ("munmap", 0, "seed-munmap-order0"), ("munmap", 9, "seed-munmap-order9"))
VARIANTS = ("baseline", "seed-basic", "seed-batch", "seed-inline", "seed-fold")
CPUS = (("neoverse-n1", "Ampere Altra"), ("apple-m2", "Apple M2 VM"))

# (benchmark, order, variant, cpu) -> (mean %, stdev %): the v5/v6 cover letter tables.
_TABLES = {
    ("fork", "neoverse-n1"): [(0.0, 2.7, 0.0, 0.2), (6.3, 1.4, 1948.7, 0.2), (7.6, 2.0, -1.9, 0.4),
                              (3.6, 1.5, -1.0, 0.2), (4.6, 2.1, -1.8, 0.2)],
    ("munmap", "neoverse-n1"): [(0.0, 0.5, 0.0, 0.3), (1.8, 0.3, 1104.8, 0.1), (-0.3, 0.4, 2.7, 0.1),
                                (-0.1, 0.6, 0.9, 0.1), (0.1, 0.6, 0.8, 0.1)],
    ("fork", "apple-m2"): [(0.0, 1.4, 0.0, 0.8), (6.8, 1.2, 469.4, 1.4), (-7.7, 2.0, -8.9, 0.7),
                           (-6.0, 2.1, -6.0, 2.0), (5.9, 1.4, -6.4, 1.4)],
    ("munmap", "apple-m2"): [(0.0, 0.6, 0.0, 0.4), (1.6, 0.6, 233.6, 0.7), (1.9, 0.3, -3.9, 0.4),
                             (2.2, 0.8, -1.6, 0.9), (1.5, 0.7, -1.7, 0.7)],
}
SEED: dict[tuple[str, int, str, str], tuple[float, float]] = {}
for (_b, _c), _rows in _TABLES.items():
    for _v, (_m0, _s0, _m9, _s9) in zip(VARIANTS, _rows, strict=True):
        SEED[(_b, 0, _v, _c)] = (_m0, _s0)
        SEED[(_b, 9, _v, _c)] = (_m9, _s9)

# order-9 contpte-basic regressions the model must land within a factor of 2 of
BASIC_TARGETS = {("fork", "neoverse-n1"): 1948.7, ("munmap", "neoverse-n1"): 1104.8,
                 ("fork", "apple-m2"): 469.4, ("munmap", "apple-m2"): 233.6}

# Rows whose sign the model does not reproduce, and why (filled in from the
# model's mechanisms; see docs/benchmarks.md).
UNEXPLAINED = {
    ("fork", 0, "seed-batch", "apple-m2"):
        "faster than baseline, but at order 0 the batch stage does baseline's descriptor work "
        "plus a CONT-bit test per PTE (wrprotect_ptes(nr == 1) reuses the value it read for the "
        "cmpxchg, so not even an extra read) and, before __always_inline, real calls; nothing "
        "in the call pattern makes it cheaper. Altra measured +7.6%; the cover letter calls the "
        "M2 VM numbers less reliable",
    ("fork", 0, "seed-inline", "apple-m2"):
        "as for seed-batch: no mechanism makes an order-0 fork cheaper than without contpte "
        "(Altra measured +3.6%)",
    ("munmap", 9, "seed-batch", "neoverse-n1"):
        "at order 9 the one difference the batch stage makes, to fork and munmap alike, is in "
        "folio_pte_batch(): one contpte_ptep_get() gather per block instead of 16 reads and loop "
        "iterations (pte_batch_hint); "
        "the batched wrprotect/set/clear loops do the same per-PTE work as baseline's "
        "(mm/memory.c copy_present_ptes(), zap_present_ptes(); arm64 contpte_clear_full_ptes()). "
        "One weight set therefore gives fork and munmap the same sign, and the seed measured "
        "-1.9% for fork but +2.7% for munmap on Altra (M2: -8.9% and -3.9%, as modelled); "
        "whatever costs 2.7% in the Altra munmap is not in the call pattern",
    ("munmap", 9, "seed-inline", "neoverse-n1"): "as for seed-batch (+0.9% measured on Altra)",
    ("munmap", 9, "seed-fold", "neoverse-n1"): "as for seed-batch (+0.8% measured on Altra)",
}


def scenario_text(name: str, size: str) -> str:
    src = builtin(name).source
    return re.sub(r"^(\s*mmap\s+\S+\s+)1G\b", r"\g<1>" + size, src, flags=re.M)


def op_cost(name: str, size: str, kernel: str, cpu: str) -> dict:
    """Counters and cycles of the scenario's last op (the measured fork/munmap)."""
    sc = parse(scenario_text(name, size), f"{name}.pts", name)
    m = Machine(sc.config(kernel=kernel, cpu=cpu, record=False, check="off"))
    ops = list(sc.ops)
    for op in ops[:-1]:
        m.apply(op)
        m.log.clear()
    c = m.apply(ops[-1])
    return {"cycles": float(c["cycles"]),
            "counters": {k: v for k, v in sorted(c.items()) if k != "cycles" and not k.startswith("call:")}}


def _job(args: tuple[str, str, str, str]) -> tuple[tuple[str, str, str], dict]:
    name, size, kernel, cpu = args
    return (name, kernel, cpu), op_cost(name, size, kernel, cpu)


def run(size: str = "1G", jobs: int = 2, quiet: bool = False) -> list[dict]:
    todo = [(name, size, k, cpu) for _b, _o, name in BENCHMARKS for cpu, _ in CPUS for k in VARIANTS]
    results: dict[tuple[str, str, str], dict] = {}
    if jobs > 1:
        with ProcessPoolExecutor(jobs) as ex:
            for i, (key, r) in enumerate(ex.map(_job, todo)):
                results[key] = r
                if not quiet:
                    progress_line(f"seed: {i + 1}/{len(todo)} runs")
    else:
        for i, t in enumerate(todo):
            key, r = _job(t)
            results[key] = r
            if not quiet:
                progress_line(f"seed: {i + 1}/{len(todo)} runs ({t[0]} {t[2]} {t[3]})")
    rows = []
    for bench, order, name in BENCHMARKS:
        for cpu, _label in CPUS:
            base = results[(name, "baseline", cpu)]["cycles"]
            for v in VARIANTS:
                cyc = results[(name, v, cpu)]["cycles"]
                pct = (cyc / base - 1) * 100 if base else 0.0
                mean, sd = SEED[(bench, order, v, cpu)]
                rows.append({"benchmark": bench, "order": order, "variant": v, "cpu": cpu,
                             "model_pct": round(pct, 1), "seed_pct": mean, "seed_stdev": sd,
                             "cycles": round(cyc), **_verdict(bench, order, v, cpu, pct, mean, sd)})
    return rows


def _verdict(bench: str, order: int, v: str, cpu: str, pct: float, mean: float, sd: float) -> dict:
    if v == "baseline":
        return {"check": "", "ok": None}
    if order == 9 and v == "seed-basic":
        want = BASIC_TARGETS[(bench, cpu)]
        ok = want / 2 <= pct <= want * 2
        return {"check": f"within 2x of {want:+.1f}%", "ok": ok}
    if abs(mean) <= sd:
        return {"check": "no sign (|mean| <= stdev)", "ok": None}
    ok = (pct > 0) == (mean > 0) and pct != 0
    d: dict = {"check": "sign", "ok": ok}
    if not ok and (bench, order, v, cpu) in UNEXPLAINED:
        d["reason"] = UNEXPLAINED[(bench, order, v, cpu)]
    return d


def table(rows: list[dict]) -> str:
    out = []
    for bench, order, _name in BENCHMARKS:
        for cpu, label in CPUS:
            out.append(f"{bench.upper()} order-{order}, {label} ({cpu})")
            out.append(f"  {'variant':<13}{'model':>10}{'seed mean':>11}{'stdev':>8}   check")
            for r in rows:
                if (r["benchmark"], r["order"], r["cpu"]) == (bench, order, cpu):
                    mark = {True: "ok", False: "MISSED", None: ""}[r["ok"]]
                    chk = f"{r['check']}: {mark}" if r["check"] else ""
                    out.append(f"  {r['variant']:<13}{r['model_pct']:>+9.1f}%{r['seed_pct']:>+10.1f}%"
                               f"{r['seed_stdev']:>7.1f}%   {chk}")
                    if r.get("reason"):
                        out.append(f"  {'':<13}  unexplained: {r['reason']}")
            out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", default="1G", help="mapping size (default 1G; relative costs scale out)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    rows = run(a.size, a.jobs)
    if a.json:
        print(json.dumps({"size": a.size, "rows": rows}))
    else:
        print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
