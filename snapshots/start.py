# SPDX-License-Identifier: GPL-2.0-only
"""The final state of a saved session, as the start of a new run
(``ptlab run my.pts --from FILE.ptsnap``).

* a **capture** (``ptlab capture PID --save``): its page tables and folios
  become a core-mm machine (engine.capture.tomachine): process ``p0``,
  mappings ``vma0``, ``vma1``, ... in address order;
* a **scenario** session (``ptlab run --save``, the TUI's save) -- or one
  that itself started ``--from`` a file: its ops are re-run to the end (the
  file is opened and checked like any snapshot: hostile records, forged
  checkpoints and contradicting headers are refused or replaced by
  re-execution, with a warning) and the machine there is the start, with its
  processes and mapping names;
* a session of direct ptep calls has no processes or VMAs: refused.

The result is a :class:`Start`: a machine state, the configuration of the
machine it belongs to, and where it came from. Every error is a
ScenarioError or SnapshotError (one line).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engine import limits
from engine.capture.tomachine import populate
from engine.errors import ScenarioError
from engine.granule import Granule
from engine.granule import granule as to_granule
from engine.mm.physmem import max_page_order
from engine.ptep_machine import ApiState
from engine.scenario_machine import Machine, MachineConfig
from engine.session import SessionError
from engine.state.pagetable import PageTable
from engine.text import escape_controls
from snapshots.errors import display_name
from snapshots.sessions import open_session

if TYPE_CHECKING:
    from engine.session import Session

GiB = 1 << 30
# MachineConfig fields a starting state fixes (they describe the machine's boot:
# memory size and ageing, swap size, readahead); a scenario run --from a file
# may not change them
FIXED_BY_START = ("memory", "aged", "swap", "readahead", "fault_around")


@dataclass
class Start:
    state: Any  # engine.scenario_machine.Machine.state()
    config: dict[str, Any]  # MachineConfig fields of the machine the state belongs to
    origin: dict[str, Any]  # plain data: file, kind, scenario name or captured PID and command
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what a conversion dropped
    # a capture's mappings (name, start, end, perms, path): shown, not saved (65,530 of them
    # would not fit in a header)
    mappings: list[tuple[str, int, int, str, str]] = field(default_factory=list)


def load_start(path: str) -> Start:
    """The final state of the snapshot at path. Raises SnapshotError or ScenarioError."""
    name = display_name(path)
    loaded = open_session(path)
    try:
        s = loaded.session
        kind = str(s.meta.get("machine", "scenario"))
        cfg = dict(s.meta.get("config", {}))
        if kind == "api":
            raise ScenarioError(f"{name}: a session of direct ptep calls has no processes or VMAs to run a "
                                "scenario on (use a capture or a scenario's snapshot)")
        try:
            s.run()
        except SessionError as e:
            why = escape_controls(str(e))
            raise ScenarioError(f"{name}: its ops cannot be re-run to the end: {why}") from None
        warnings = list(dict.fromkeys([*loaded.warnings, *s.warnings]))
        if kind == "capture":
            return _from_capture(name, s, cfg, warnings)
        if kind not in ("scenario", "scenario-from"):
            raise ScenarioError(f"{name}: a session of machine kind {escape_controls(kind)[:40]!r} cannot "
                                "start a scenario")
        cfg.pop("start", None)
        origin = {"file": name, "kind": "scenario", "scenario": escape_controls(s.name)[:200],
                  "ops": s.n_ops}
        return Start(s.machine.state(), cfg, origin, warnings)
    finally:
        loaded.snapshot.close()


def _needed_memory(api_state: ApiState, g: Granule) -> int:
    """Bytes of machine memory the captured pages need after relocation (an
    upper bound: every MAX_PAGE_ORDER block holding a page, plus one free block
    for each gap, plus block 0)."""
    pt = PageTable(g)
    pt.restore(api_state[0])
    order = max_page_order(g.page_shift, g.pmd_order)
    blocks: set[int] = set()
    low = g.pte_addr_low
    for _va, pte in pt.iter_present():
        blocks.add(((pte & low) >> g.page_shift) >> order)
    for pmd in pt.pmd_leaves.values():
        p = (pmd & low) >> g.page_shift
        blocks.add(p >> order)
        blocks.add((p + (1 << g.pmd_order) - 1) >> order)
    return (2 * len(blocks) + 1) << order << g.page_shift


def _from_capture(name: str, s: Session, cfg: dict[str, Any], warnings: list[str]) -> Start:
    prov = cfg.get("capture")
    g = to_granule(cfg.get("granule", "4K"))
    api_state = s.machine.state()
    need = _needed_memory(api_state, g)
    # the default 4 GiB, or enough for the capture and 1 GiB more for what the scenario allocates
    memory = max(4 * GiB, -(-(need + GiB) // GiB) * GiB)
    if memory > limits.MAX_SIZES["memory"]:
        raise ScenarioError(f"{name}: the captured memory would need {memory // GiB} GiB of machine memory, "
                            f"above ptlab's limit of {limits.MAX_SIZES['memory'] // GiB} GiB")
    mcfg: dict[str, Any] = {"granule": g.name, "kernel": cfg.get("kernel"), "cpu": cfg.get("cpu"),
                            "seed": 1, "memory": memory}
    m = Machine(MachineConfig(**mcfg, record=False, check="off"))
    try:
        conv = populate(m, api_state, prov)
    except ScenarioError as e:
        raise ScenarioError(f"{name}: {e.message}") from None
    prov = prov if isinstance(prov, dict) else {}
    origin = {"file": name, "kind": "capture", "pid": prov.get("pid"),
              "command": escape_controls(str(prov.get("command", "?")))[:200],
              "pfns": str(prov.get("pfns", "?"))[:20], "captured": str(prov.get("captured", "?"))[:40]}
    mappings = [(n, a, b, perms, escape_controls(path)[:200]) for n, a, b, perms, path in conv.names]
    full = MachineConfig(**mcfg).summary()
    full["cpu"] = cfg.get("cpu")  # a profile embedded by value stays embedded
    return Start(m.state(), full, origin, warnings, conv.warnings(), mappings)
