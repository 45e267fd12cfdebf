# SPDX-License-Identifier: GPL-2.0-only
"""Plain-data summaries of a session position, shared by the CLI commands."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.compare_configs import TOTAL_KEYS
from engine.mapping_summary import folded_blocks
from engine.pte import PTE_VALID

if TYPE_CHECKING:
    from engine.arch import Arch
    from engine.contract import MachineProcess
    from engine.session import Session


def process_summary(arch: Arch, proc: MachineProcess) -> dict[str, Any]:
    present = sum(1 for t in proc.mm.pt.tables.values() for v in t if v & PTE_VALID)
    cont = folded_blocks(proc.mm.pt, arch.cont_ptes)
    d: dict[str, Any] = {"name": proc.name, "present": present, "cont_blocks": cont,
                         "pmd_leaves": len(proc.mm.pt.pmd_leaves)}
    if proc.vmas is not None:
        d["vmas"] = [{"name": v.name, "start": f"{v.start:#x}", "end": f"{v.end:#x}"} for v in proc.vmas]
    return d


def position_summary(session: Session) -> dict[str, Any]:
    totals = session.totals(session.k)
    m = session.machine
    procs = [process_summary(m.arch, p) for p in m.process_list()]
    out: dict[str, int | float] = {k: int(totals.get(k, 0)) for k in TOTAL_KEYS if k != "cycles"}
    out["cycles"] = round(float(totals.get("cycles", 0.0)), 1)
    out["cont_blocks"] = sum(p["cont_blocks"] for p in procs)
    return {"step": session.k, "ops": len(session.ops), "totals": out, "processes": procs}
