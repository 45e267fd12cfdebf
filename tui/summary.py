# SPDX-License-Identifier: GPL-2.0-only
"""Plain-data summaries of a session position, shared by the CLI commands."""

from __future__ import annotations

from typing import Any

from engine.compare import TOTAL_KEYS


def process_summary(arch: Any, proc: Any) -> dict[str, Any]:
    n = arch.cont_ptes
    present = cont = 0
    for t in proc.mm.pt.tables.values():
        for i in range(0, len(t), n):
            block = t[i:i + n]
            valid = sum(1 for v in block if v & 1)
            present += valid
            if valid == n and all(v >> 52 & 1 for v in block):
                cont += 1
    d: dict[str, Any] = {"name": proc.name, "present": present, "cont_blocks": cont,
                         "pmd_leaves": len(proc.mm.pt.pmd_leaves)}
    vmas = getattr(proc, "vmas", None)
    if vmas is not None:
        d["vmas"] = [{"name": getattr(v, "name", ""), "start": f"{v.start:#x}", "end": f"{v.end:#x}"}
                     for v in vmas]
    return d


def position_summary(session: Any) -> dict[str, Any]:
    totals = session.totals(session.k)
    m = session.machine
    procs = [process_summary(m.arch, p) for p in m.process_list()]
    out = {k: int(totals.get(k, 0)) for k in TOTAL_KEYS if k != "cycles"}
    out["cycles"] = round(float(totals.get("cycles", 0.0)), 1)
    out["cont_blocks"] = sum(p["cont_blocks"] for p in procs)
    return {"step": session.k, "ops": len(session.ops), "totals": out, "processes": procs}
