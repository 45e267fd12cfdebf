# SPDX-License-Identifier: GPL-2.0-only
"""Before/after table of ``ptlab bench mm --json`` runs of two trees.

    python -m bench.compare_runs --before B1.json B2.json --after A1.json A2.json

Each file is the output of one ``ptlab bench mm --json``; the runs of each
side are pooled (every run of every file, not the medians of the files), and
each cell is the median with the lowest and highest run beside it. The
``x floor`` columns are each run's own ratio to the floor sampled right
before and after it in the same process, which is what compares when the
host is shared: run the two trees alternately in the same period.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from typing import Any

LAYOUTS = ("order-0", "64K mTHP", "PTE-mapped 2M")
PHASES = ("fault-in", "fork", "munmap")


def _mm(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        info: dict[str, Any] = json.load(f)["info"]
    mm: dict[str, Any] = info.get("mm", info)  # `ptlab bench mm` nests it under "mm"
    return mm


def _runs(infos: list[dict[str, Any]], mode: str, layout: str, phase: str, key: str) -> list[float]:
    out: list[float] = []
    for info in infos:
        out += info[mode][layout][phase][key]
    return out


def _rate(v: float) -> str:
    return f"{v / 1e6:.2f} M" if v >= 1e6 else f"{v / 1e3:,.1f} K"


def _cell(values: list[float], fmt: Any) -> str:
    return f"{fmt(statistics.median(values))} ({fmt(min(values))}-{fmt(max(values))})"


def table(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> list[str]:
    lines = ["| mode | layout | phase | before: PTE updates/s | after | after / before "
             "| before: x floor | after: x floor | target |",
             "|---|---|---|---:|---:|---:|---:|---:|---|"]
    ratio = "{:.1f}".format
    for mode in ("count", "record"):
        for layout in LAYOUTS:
            if layout not in before[0].get(mode, {}):
                continue
            for phase in PHASES:
                rb = _runs(before, mode, layout, phase, "updates_per_s_runs")
                ra = _runs(after, mode, layout, phase, "updates_per_s_runs")
                xb = _runs(before, mode, layout, phase, "x_floor_runs")
                xa = _runs(after, mode, layout, phase, "x_floor_runs")
                target = ("(none)" if mode == "record"
                          else ">= 300 K/s, <= 6x" if layout == "order-0" else ">= 1 M/s, <= 4x")
                lines.append(f"| {mode} | {layout} | {phase} | {_cell(rb, _rate)} | {_cell(ra, _rate)} "
                             f"| {statistics.median(ra) / statistics.median(rb):.2f}x "
                             f"| {_cell(xb, ratio)} | {_cell(xa, ratio)} | {target} |")
    lines.append("")
    for side, infos in (("before", before), ("after", after)):
        floors = [float(f) for info in infos for f in info["floor_samples"]]
        lines.append(f"floor, {side}: median {statistics.median(floors):,.0f} /s over {len(floors)} "
                     f"samples ({min(floors):,.0f}-{max(floors):,.0f})")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before", nargs="+", required=True, help="bench mm --json files of the old tree")
    ap.add_argument("--after", nargs="+", required=True, help="bench mm --json files of the new tree")
    args = ap.parse_args(argv)
    print("\n".join(table([_mm(p) for p in args.before], [_mm(p) for p in args.after])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
