# SPDX-License-Identifier: GPL-2.0-only
"""ptlab run TARGET: run a scenario and print its costs and final mappings."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tui.errors import UserError

if TYPE_CHECKING:
    from engine.contract import MachineContract
    from engine.errors import ScenarioError
    from engine.scenario_machine import Machine
    from engine.session import Session

NAME = "run"
HELP = "run a scenario (built-in name or .pts file) and print its counters"
DESCRIPTION = ("Run a scenario to the end. --kernel/--granule/--cpu/--policy override the "
               "scenario's own directives. --json prints one object with \"totals\" and, per "
               "process, the final mapping summary under \"processes\".\n\n"
               "--from FILE.ptsnap runs the scenario on top of the final state of a saved session "
               "instead of a fresh machine: a capture (ptlab capture PID --save FILE.ptsnap) or a "
               "scenario's snapshot (ptlab run --save, the TUI's save, an earlier --from run). "
               "Names: a capture's process is p0 (the current process) and its mappings are vma0, "
               "vma1, ... in address order (ptlab run --from FILE.ptsnap with no TARGET lists them, "
               "e.g. mprotect vma3 +0 64K r; fork child); a scenario's snapshot keeps its process and "
               "mapping names and its current process. The starting state fixes the kernel profile, "
               "the granule and the memory, swap, readahead and fault-around sizes (a scenario "
               "directive or option that contradicts them is an error); cpu, policy, seed, thp, mthp "
               "and check apply. The file is checked like any snapshot; --save writes a snapshot whose "
               "checkpoint 0 is the starting state, so replay --verify re-runs it from there.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", metavar="TARGET", nargs="?",
                   help="built-in scenario name or scenario file (.pts); optional with --from")
    p.add_argument("--kernel", help="kernel profile (e.g. v6.9, seed-basic, v7.0)")
    p.add_argument("--granule", help="4K, 16K or 64K")
    p.add_argument("--cpu", help="CPU profile name or .toml file")
    p.add_argument("--policy", help="fold policy: a built-in name or FILE.py:CLASS")
    p.add_argument("--save", metavar="FILE.ptsnap",
                   help="also save the session (every op, its costs and checkpoints) as a snapshot; "
                        "Ctrl-C stops the run (undoing the op in progress) and saves the ops done")
    p.add_argument("--from", dest="start", metavar="FILE.ptsnap",
                   help="start from the final state of a saved session (a capture or a scenario's "
                        "snapshot) instead of a fresh machine; see above for the names to use")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def source_name(target: str) -> str:
    """How errors name the scenario: the file, or NAME.pts for a built-in."""
    return target if target.endswith(".pts") else f"{target}.pts"


def op_failure(target: str, k: int, op: Any, error: BaseException) -> ScenarioError:
    """One line for an op that failed: ``FILE:LINE: message`` for a scenario
    mistake, ``FILE:LINE: op N (TEXT): message`` for anything else the op ran
    into (a user policy that raised, returned nonsense or ran too long)."""
    from engine.errors import ScenarioError

    if isinstance(error, ScenarioError):
        return ScenarioError(error.message, error.line or op.line, error.file or source_name(target))
    return ScenarioError(f"op {k + 1} ({op}): {error}", op.line, source_name(target))


def execute(target: str, kernel: str | None = None, granule: str | None = None,
            cpu: str | None = None, policy: str | None = None) -> tuple[Any, Any]:
    """Run target to the end; returns (scenario, machine). Raises ScenarioError."""
    from engine.errors import ScenarioError
    from engine.policy import PolicyError
    from engine.scenario import resolve
    from engine.scenario_machine import Machine

    scenario = resolve(target)
    # count mode: a run only needs the counters, and memory stays flat however
    # many events one op emits (a 1 GiB fault-in emits millions)
    cfg = scenario.config(kernel=kernel, granule=granule, cpu=cpu, policy=policy, record=False)
    if cfg.check == "op" and "check" not in scenario.header:
        cfg.check = "end"  # whole-address-space checks after every op are for tests
    m = Machine(cfg)
    for k, op in enumerate(scenario.ops):
        try:
            m.apply(op)
        except (ScenarioError, PolicyError) as e:
            raise op_failure(target, k, op, e) from None
    m.finish()
    return scenario, m


def execute_and_save(target: str, path: str, kernel: str | None = None, granule: str | None = None,
                     cpu: str | None = None, policy: str | None = None) -> tuple[Any, Any, bool]:
    """Run target as a recorded session and save it; returns (scenario,
    machine, interrupted). The first Ctrl-C stops the run within milliseconds
    -- an op in progress is undone, so the session ends at an op boundary --
    and saves the ops done; a second one abandons the save."""
    from engine.scenario import resolve
    from tui.targets import scenario_session

    scenario = resolve(target)
    check_save_target(path)
    check = None if "check" in scenario.header else "end"
    session = scenario_session(target, kernel=kernel, granule=granule, cpu=cpu, policy=policy, check=check)
    return (scenario, *run_session(session, target, path))


def run_session(session: Session, target: str, path: str | None) -> tuple[Machine, bool]:
    """Run a session to the end (and save it to path, if given); returns
    (machine, interrupted). The first Ctrl-C stops the run within
    milliseconds -- an op in progress is undone, so the session ends at an op
    boundary -- and saves the ops done; a second one abandons the save."""
    import signal

    from engine.scenario_machine import Machine
    from engine.session import SessionError
    from snapshots import SnapshotError
    from snapshots.sessions import save_session

    stop = {"flag": False}

    def on_sigint(signum, frame):  # noqa: ARG001
        if stop["flag"]:
            raise KeyboardInterrupt
        stop["flag"] = True
        print(("\n" if sys.stderr.isatty() else "")  # off the progress line
              + "ptlab: interrupted: saving the ops done so far (Ctrl-C again to abandon the save)",
              file=sys.stderr)

    session.interrupt = lambda: stop["flag"]
    old = signal.signal(signal.SIGINT, on_sigint) if _main_thread() else None
    try:
        try:
            session.run(progress=_progress)
        except SessionError as e:
            k = session.error[0] if session.error is not None else session.k
            raise op_failure(target, k, session.ops[k], e.__cause__ or e) from None
        finally:
            if sys.stderr.isatty():
                print("\r" + " " * 40 + "\r", end="", file=sys.stderr)
        m = session.machine
        assert isinstance(m, Machine)  # ptlab run runs scenarios: the core-mm machine
        if not stop["flag"]:
            m.finish()
        if path is not None:
            try:
                save_session(session, path, run_remaining=False)
            except SnapshotError as e:
                raise UserError(str(e)) from None
    finally:
        if old is not None:
            signal.signal(signal.SIGINT, old)
    return m, stop["flag"]


def start_session(target: str | None, start_path: str, kernel: str | None = None, granule: str | None = None,
                  cpu: str | None = None, policy: str | None = None) -> tuple[Any, Any, Any]:
    """(scenario, session, start): the scenario's ops on top of the final
    state of the snapshot at start_path (see DESCRIPTION). Raises
    ScenarioError, SnapshotError or UserError."""
    from engine.errors import ScenarioError
    from engine.machine_kinds import machine_factory
    from engine.scenario import parse, resolve
    from engine.scenario_machine import Machine, MachineConfig
    from engine.session import Session
    from snapshots.start import FIXED_BY_START, load_start

    scenario = resolve(target) if target is not None else parse("", "start.pts", "start")
    src = source_name(target) if target is not None else "--from"
    if not start_path.endswith(".ptsnap"):
        raise UserError(f"run: --from {start_path!r}: a saved session (FILE.ptsnap) is needed")
    start = load_start(start_path)
    h = scenario.header
    for key in FIXED_BY_START:
        if key in h:
            raise ScenarioError(f"the directive {key} cannot be combined with --from: the starting state "
                                "fixes it", 0, src)
    for key, given in (("kernel", kernel or h.get("kernel")), ("granule", granule or h.get("granule"))):
        have = start.config.get(key)
        if given is not None and str(given) != str(have):
            raise ScenarioError(f"{key} {given} contradicts the starting state ({key} {have}): a state is "
                                "modelled under its own kernel profile and granule", 0, src)
    fields = {k: v for k, v in start.config.items() if k != "start"}
    for key in ("cpu", "policy", "check", "seed", "thp", "mthp"):
        if key in h:
            fields[key] = h[key]
    if "check" not in h:
        fields["check"] = "end"  # whole-address-space checks after every op are for tests
    if cpu is not None:
        fields["cpu"] = cpu
    if policy is not None:
        fields["policy"] = policy
    fields["record"] = False
    m = Machine(MachineConfig(**fields))
    empty_tlb = m.mmu.tlb.clone_state()
    m.restore(start.state)
    if "thp" in h:
        m.kernel.thp.set_top(h["thp"])
    for size, setting in h.get("mthp", {}).items():
        m.kernel.thp.set(size, setting)
    if "seed" in h:
        m.rng.seed(h["seed"])
    if m.cpu.name != Machine(MachineConfig(**{**fields, "cpu": start.config.get("cpu")})).cpu.name:
        m.mmu.tlb.restore_state(empty_tlb)  # another CPU's TLB geometry: start with an empty TLB
    m.totals.clear()  # a new run: its counters start at zero
    m.nops = 0
    st0 = m.state()
    cfg = MachineConfig(**fields).summary()
    cfg["cpu"] = fields["cpu"]  # a profile embedded by value stays embedded
    cfg["start"] = {"digest": m.digest(), **start.origin}
    empty = machine_factory("scenario-from", cfg)

    def make() -> MachineContract:
        mm = empty()
        mm.restore(st0)
        return mm

    o = start.origin
    what = (f"the capture of PID {o.get('pid')} ({o.get('command')})" if o.get("kind") == "capture"
            else f"the end of {o.get('scenario')}")
    session = Session(make, scenario.ops, name=f"{scenario.name} from {what}", source=scenario.source,
                      meta={"machine": "scenario-from", "config": cfg, "description": scenario.description})
    session.warnings.extend(start.warnings + start.notes)
    return scenario, session, start


def _origin_line(o: dict[str, Any]) -> str:
    if o.get("kind") == "capture":
        return (f"{o.get('file')}: the capture of PID {o.get('pid')} ({o.get('command')}), "
                f"{o.get('pfns')} PFNs, {o.get('captured')}")
    return f"{o.get('file')}: the end of {o.get('scenario')} ({o.get('ops')} ops)"


def check_save_target(path: str) -> None:
    """Fail before a long run, not after it, when the file cannot be written
    (the save itself checks again, and never damages a previous file)."""
    import os

    p = Path(path)
    if p.is_dir():
        raise UserError(f"{path}: cannot save: it is a directory (nothing was saved)")
    parent = p.parent
    if not parent.is_dir():
        raise UserError(f"{path}: cannot save: its directory does not exist (nothing was saved)")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"{path}: cannot save: its directory is not writable (nothing was saved)")


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _progress(k: int, n: int) -> None:
    if sys.stderr.isatty():
        print(f"\rop {k}/{n}", end="", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    from engine.errors import ScenarioError
    from engine.mapping_summary import machine_summary, memory_summary
    from snapshots import SnapshotError

    interrupted = False
    start = None
    if args.target is None and args.start is None:
        raise UserError("ptlab run: the following arguments are required: TARGET (or --from FILE.ptsnap)")
    try:
        if args.start is not None:
            if args.save:
                check_save_target(args.save)
            scenario, session, start = start_session(args.target, args.start, args.kernel, args.granule,
                                                     args.cpu, args.policy)
            for w in session.warnings:
                print(f"ptlab: warning: {w}", file=sys.stderr)
            m, interrupted = run_session(session, args.target or "start.pts", args.save)
        elif args.save:
            scenario, m, interrupted = execute_and_save(args.target, args.save, args.kernel, args.granule,
                                                        args.cpu, args.policy)
        else:
            scenario, m = execute(args.target, args.kernel, args.granule, args.cpu, args.policy)
    except ScenarioError as e:
        raise UserError(str(e)) from None
    except SnapshotError as e:
        raise UserError(str(e)) from None
    totals = m.counters()
    procs = machine_summary(m)
    if args.json:
        cfg = m.config.summary()
        cfg["policy"] = m.policy.name  # the policy actually loaded (a file's class may name itself)
        out = {"scenario": scenario.name, "config": cfg, "totals": totals, "processes": procs,
               "memory": memory_summary(m)}
        if args.save:
            out["saved"] = args.save
            out["interrupted"] = interrupted
        if start is not None:
            out["from"] = start.origin
            out["dropped"] = start.notes
        print(json.dumps(out))
        return 130 if interrupted else 0
    if start is not None:
        print(f"{scenario.name}: {scenario.description}" if args.target
              else "(no scenario: the starting state itself)")
        print(f"from {_origin_line(start.origin)}")
        if start.mappings:
            print(f"  process p0: {len(start.mappings)} mappings, "
                  + ", ".join(f"{n} {a:#x}-{b:#x} {perms} {path or '[anon]'}"
                              for n, a, b, perms, path in start.mappings[:8])
                  + (", ..." if len(start.mappings) > 8 else ""))
    else:
        print(f"{scenario.name}: {scenario.description}")
    print(f"kernel {m.profile.name}  granule {m.g.name}  cpu {m.cpu.name}  policy {m.policy.name}  "
          f"ops {totals['ops']}")
    print()
    width = max(len(k) for k in totals)
    for k, v in totals.items():
        print(f"  {k:<{width}}  {v:>14,}" if isinstance(v, int) else f"  {k:<{width}}  {v:>16,.1f}")
    print()
    mem = memory_summary(m)
    phys, swap = mem["physical"], mem["swap"]
    print(f"memory: {phys['used']} of {phys['pages']} pages in use, {phys['large_folios']} large folios, "
          f"largest free order {phys['largest_free_order']}; swap {swap['used']} of {swap['slots']} slots")
    print()
    for name, p in procs.items():
        state = "" if p["alive"] else "  (exited)"
        print(f"process {name} (pid {p['pid']}, asid {p['asid']}){state}: rss {p['rss_pages']} pages, "
              f"{p['cont_blocks']} CONT blocks, {p['pmd_mappings']} PMD maps, "
              f"{p['swap_entries']} swap entries")
        for v in p["vmas"]:
            print(f"  {v['name']:<12} {v['start']:#014x}-{v['end']:#014x} {v['prot']:<4} {v['kind']:<5} "
                  f"{'shared ' if v['shared'] else 'private'} present {v['ptes_present']:>7} "
                  f"cont {v['cont_blocks']:>5} pmd {v['pmd_mappings']:>3} swap {v['swap_entries']:>6}")
    if args.save:
        print()
        print(f"saved {totals['ops']} ops to {args.save}" + (" (interrupted)" if interrupted else ""))
    return 130 if interrupted else 0
