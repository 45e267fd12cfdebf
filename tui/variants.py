# SPDX-License-Identifier: GPL-2.0-only
"""Compare a session with the same ops under another kernel profile or fold
policy: run both, find the first op whose state digests differ, and say
which descriptors differ there. Pure engine-side code (runs in a worker)."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

from engine import queries
from engine.session import Position, Session, SessionError
from tui.controller import MoveResult, gather
from tui.errors import UserError

SETTINGS = ("kernel", "policy", "cpu", "granule")


def variant(session: Session, *, kernel: str | None = None, policy: str | None = None,
            cpu: str | None = None, granule: str | None = None) -> Session:
    """A new Session running session's ops with another kernel profile, policy (a built-in
    name or FILE.py:CLASS), CPU profile (a built-in name or FILE.toml) or granule: the
    session's recorded machine kind and configuration (session.meta) with these changes,
    through engine.machine_kinds.reopen -- the one way to re-run under other settings."""
    from engine.machine_kinds import reopen
    from tui.targets import Overrides, _check_names, check_granule

    asked = {"kernel": kernel, "policy": policy, "cpu": cpu, "granule": granule}
    changes = {k: v for k, v in asked.items() if v is not None}
    _check_names(Overrides(kernel, None, cpu, policy))  # one line for a bad name or file, now
    if granule is not None:
        from engine.granule import granule as to_granule

        try:
            changes["granule"] = to_granule(granule).name
        except ValueError as e:
            raise UserError(str(e)) from None
        # a scenario written for one granule (its offsets) is refused, as ptlab tui refuses it
        check_granule(session.name, session.source, granule)
    try:
        return reopen(session, **changes)
    except ValueError as e:
        raise UserError(str(e)) from None


def granules_for(session: Session) -> list[str]:
    """The granule names this session's ops can run under: those its scenario says it is
    written for (``# granules: 4K``), else all three."""
    from engine.granule import GRANULES, granule
    from tui.targets import declared_granules

    names = [g.name for g in GRANULES.values()]
    declared = declared_granules(session.source)
    if not declared:
        return names
    out = []
    for d in declared:
        try:
            out.append(granule(d).name)
        except ValueError:
            continue
    return [n for n in names if n in out]


def parse_variant(text: str, current: dict[str, str] | None = None) -> dict[str, str]:
    """What a typed comparison target means: ``KIND:VALUE`` (kernel, policy, cpu, granule),
    or a bare value recognised by its form (FILE.toml a CPU profile, FILE.py:CLASS a policy,
    4K/16K/64K a granule, a built-in kernel, policy or CPU name). Raises UserError."""
    from engine.arch.profiles import PROFILES
    from engine.granule import GRANULES
    from engine.hw.cpus import CPUS
    from engine.policy import BUILTIN_POLICIES

    t = text.strip()
    kind, sep, value = t.partition(":")
    if sep and kind in SETTINGS and value:
        out = {kind: value}
    elif t.endswith(".toml"):
        out = {"cpu": t}
    elif ".py:" in t or t.endswith(".py"):
        out = {"policy": t}
    elif t.upper() in {g.name for g in GRANULES.values()}:
        out = {"granule": t.upper()}
    elif t in PROFILES:
        out = {"kernel": t}
    elif t in BUILTIN_POLICIES:
        out = {"policy": t}
    elif t in CPUS:
        out = {"cpu": t}
    else:
        raise UserError(f"compare with what? {t!r} is not a kernel profile, policy, CPU profile or "
                        "granule (KIND:VALUE with KIND one of kernel, policy, cpu, granule; FILE.py:CLASS; "
                        "FILE.toml)")
    if current is not None and all(current.get(k) == v for k, v in out.items()):
        raise UserError(f"{next(iter(out))} {next(iter(out.values()))} is the setting in use already")
    return out


def settings_of(session: Session) -> dict[str, str]:
    """The kernel, CPU, granule and policy the session runs under, as a comparison names them.
    The policy is the one its configuration gives (what reopen changes), else the machine's."""
    m = session.machine
    arch = m.arch
    pol = session.meta.get("config", {}).get("policy") or m.policy.name
    return {"kernel": arch.profile.name, "cpu": arch.cpu.name, "granule": arch.g.name,
            "policy": str(pol or "mainline")}


def same_granule(a: Session, b: Session) -> bool:
    return a.machine.arch.g.page_size == b.machine.arch.g.page_size


def first_divergence(a: Session, b: Session) -> tuple[int | None, str]:
    """(op index, reason) of the first op after which the two states differ
    (engine.queries.first_divergence, worded for the comparison screen)."""
    d = queries.first_divergence(a, b)
    if d.why == queries.TABLES:
        if not same_granule(a, b):
            return d.op, "page tables differ after this op (other granule: other tables)"
        return d.op, "page tables differ after this op"
    if d.why == queries.ERROR:
        return d.op, f"op fails in {'AB'[d.side or 0]}: {d.error}"
    if d.why == queries.LENGTH:
        return d.op, "one session stopped early"
    if d.why == queries.OPS:  # (a variant runs the same ops: only two opened sessions could)
        return d.op, "the ops differ"
    return None, "no divergence"


def op_cost_difference(a: Session, b: Session, k: int) -> str | None:
    """How op k's costs differ (cycles first, then the counters), or None if they do not
    (engine.queries.costs_differ)."""
    ra, rb = a.records[k], b.records[k]
    if not queries.costs_differ(ra, rb):
        return None
    ca, cb = ra.counters, rb.counters
    keys = queries.cost_counters_differing(ca, cb)
    parts = []
    if (ra.cycles or 0) != (rb.cycles or 0):
        from tui.eventfmt import fmt_cycles

        x, y = fmt_cycles(ra.cycles or 0), fmt_cycles(rb.cycles or 0)
        if x == y:  # (21.6k → 21.6k says nothing: the exact figures)
            x, y = f"{ra.cycles or 0:,.0f}", f"{rb.cycles or 0:,.0f}"
        parts.append(f"cycles {x} → {y}")
    parts += [f"{c} {ca.get(c, 0)} → {cb.get(c, 0)}" for c in keys[:4]]
    return ", ".join(parts) + (" …" if len(keys) > 4 else "")


def first_cost_divergence(a: Session, b: Session) -> tuple[int | None, str]:
    """(op index, how) of the first op whose costs differ (cycles or any counter)."""
    for k in range(min(len(a.records), len(b.records))):
        how = op_cost_difference(a, b, k)
        if how is not None:
            return k, how
    return None, "the same costs for every op"


def differing_ops(a: Session, b: Session) -> list[int]:
    """Every op index after which the page tables differ or whose costs differ, ascending."""
    return [k for k in range(min(len(a.records), len(b.records)))
            if a.records[k].digest != b.records[k].digest or op_cost_difference(a, b, k) is not None]


def diff_addrs(a: Session, b: Session) -> set[tuple[str, int]]:
    """(process, VA) of every descriptor that differs between the two live machines: the
    entries engine.queries.iter_differences finds (a PMD leaf at its first VA), and every
    entry a process maps that the other machine does not have at all. Under two granules
    entries are not compared one by one (none are marked)."""
    out: set[tuple[str, int]] = set()
    if not same_granule(a, b):
        return out
    for name, addr, _va, _vb in queries.iter_differences(a, b):
        if addr is not None:
            out.add((name, addr))
            continue
        # a process only one side has: each entry it maps differs from the other's none
        for s in (a, b):
            for p in s.machine.process_list():
                if p.name == name:
                    out.update((name, va) for va, _v in p.mm.pt.iter_present())
    return out


@dataclass
class CompareResult:
    a: Session
    b: Session
    first: int | None
    reason: str
    a_move: MoveResult
    b_move: MoveResult
    diff: set[tuple[str, int]] = field(default_factory=set)
    label_b: str = ""
    interrupted: bool = False
    first_cost: int | None = None  # first op whose costs differ
    cost_reason: str = ""
    ops: list[int] = field(default_factory=list)  # every op that differs (tables or costs)


def run_compare(a: Session, make_b: Callable[[], Session], label_b: str,
                report: Callable[[int, int], None] | None = None, b: Session | None = None,
                start: str = "tables") -> CompareResult:
    """Run both to the end, find the first divergences (page tables and costs), put both just
    after the one ``start`` names ("tables" or "costs")."""
    if b is None:
        b = make_b()
    b.interrupt = a.interrupt
    before_a = a.position
    n = a.n_ops
    interrupted = False
    for i, s in enumerate((a, b)):
        prog = None if report is None else (lambda d, t, i=i: report(i * n + d, 2 * n))
        with contextlib.suppress(SessionError):
            s.run(progress=prog)
        if s.k < n and s.error is None:
            interrupted = True
            break
    first, reason = first_divergence(a, b)
    first_cost, cost_reason = first_cost_divergence(a, b)
    # (a_move, b_move: None until _place_both puts both sessions in place, below)
    res = CompareResult(a, b, first, reason, None, None, set(), label_b, interrupted,  # type: ignore[arg-type]
                        first_cost, cost_reason, differing_ops(a, b))
    at = first_cost if start == "costs" else first
    target = Position(n if at is None else min(n, at + 1))
    return _place_both(res, before_a, target)


def _place_both(res: CompareResult, before_a: Position, target: Position) -> CompareResult:
    a, b = res.a, res.b
    before_b = b.position
    for s in (a, b):
        with contextlib.suppress(SessionError):
            s.seek(Position(min(target.op, s.executed)))
    return dataclasses.replace(res, a_move=gather(a, before_a), b_move=gather(b, before_b),
                               diff=diff_addrs(a, b))


def step_both(res: CompareResult, delta: int) -> CompareResult:
    target = Position(max(0, min(res.a.n_ops, res.a.k + delta)))
    return _place_both(res, res.a.position, target)


def seek_both(res: CompareResult, op: int) -> CompareResult:
    return _place_both(res, res.a.position, Position(op))


def next_differing_op(res: CompareResult, direction: int) -> int | None:
    """The op (index) of the next (previous) difference from the position, or None.
    The position after op k shows op k, so "next" is the first differing op >= position."""
    here = res.a.k - 1  # the op shown
    if direction > 0:
        return next((k for k in res.ops if k > here), None)
    return next((k for k in reversed(res.ops) if k < here), None)
