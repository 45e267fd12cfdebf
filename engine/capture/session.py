# SPDX-License-Identifier: GPL-2.0-only
"""A captured process as a session: its engine state is the session's start.

``capture_session(built)`` makes a Session over an ApiMachine (direct ptep
calls) whose starting state is the captured page tables and folios, built
through the ptep API by :func:`engine.capture.build.build`. It has no ops
of its own; a user may step ptep calls on top. Saved, the starting state is
the file's checkpoint 0 and the header's ``extra.config.capture`` holds the
provenance: PID, command, kernel release and machine, whether PFNs were real
or synthetic, the VMA layout, the folio count, and the digest of the starting
page tables (a damaged checkpoint 0 is refused).

Machine kind ``"capture"`` (registered in engine.machine_kinds): built empty from its
configuration; the session layer (snapshots.sessions) restores checkpoint 0 into it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from engine.policy import load_policy
from engine.ptep_machine import ApiMachine, ApiState
from engine.session import Session
from engine.text import escape_controls

MAX_VMAS_IN_HEADER = 10_000  # the header holds at most this many VMAs (4 MiB header limit)


if TYPE_CHECKING:
    from engine.capture.build import Built


def _empty(cfg: dict[str, Any]) -> Callable[[], ApiMachine]:
    g, kernel, cpu = cfg.get("granule", "4K"), cfg.get("kernel", "v7.0"), cfg.get("cpu", "neoverse-n1")
    # the policy too (machine_kinds.reopen may change it): loaded once, as for the "api" kind
    pol = cfg.get("policy")
    policy = load_policy(pol) if pol not in (None, "", "mainline") else None
    ApiMachine(g, kernel, cpu, policy)  # fail now on a bad configuration
    return lambda: ApiMachine(g, kernel, cpu, policy)


def starting_from(cfg: dict[str, Any], start: ApiState) -> Callable[[], ApiMachine]:
    """A machine factory whose machines begin at ``start`` (an ApiMachine state)."""
    empty = _empty(cfg)

    def make() -> ApiMachine:
        m = empty()
        m.restore(start)
        return m

    return make


def start_digest(machine: ApiMachine) -> str:
    return machine.digest()


def provenance(built: Built) -> dict[str, Any]:
    cap = built.capture
    info = cap.info
    vmas = [v.to_plain() for v in built.vmas]
    return {
        "pid": int(cap.pid), "command": escape_controls(str(cap.comm)),
        "kernel_release": str(info.get("kernel_release", "?")), "machine": str(info.get("machine", "?")),
        "captured": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "pfns": "synthetic" if cap.synthetic else "real",
        "host_page_size": int(cap.page_size),
        "vma_count": len(vmas), "vmas": vmas[:MAX_VMAS_IN_HEADER],
        "folio_count": len(built.plan.folios),
        "plan": {k: int(v) for k, v in built.plan.stats().items()},
    }


def capture_session(built: Built, cpu: str = "neoverse-n1") -> Session:
    """The Session whose start is ``built`` (engine.capture.build.Built)."""
    cfg: dict[str, Any] = {"granule": built.granule.name, "kernel": built.plan.kernel, "cpu": cpu,
                           "policy": None}
    m = ApiMachine(cfg["granule"], cfg["kernel"], cpu)
    m.restore((built.sim.mm.pt.snapshot(), built.sim.folios.clone()))
    start = m.state()
    prov = provenance(built)
    prov["start_digest"] = start_digest(m)
    cfg["capture"] = prov
    name = f"capture of PID {prov['pid']} ({prov['command']})"
    return Session(starting_from(cfg, start), [], name=name, source="",
                   meta={"machine": "capture", "config": cfg})
