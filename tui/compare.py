# SPDX-License-Identifier: GPL-2.0-only
"""Compare a session with the same ops under another kernel profile or fold
policy: run both, find the first op whose state digests differ, and say
which descriptors differ there. Pure engine-side code (runs in a worker)."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

from engine.session import Position, Session, SessionError
from tui.controller import MoveResult, gather
from tui.errors import UserError


def variant(session: Session, *, kernel: str | None = None, policy: str | None = None) -> Session:
    """A new Session running session's ops with another kernel profile / policy."""
    fn = getattr(session, "reopen", None)
    if callable(fn) and (getattr(session, "meta", None) or "reopen" in vars(session)):
        try:
            return fn(kernel=kernel, policy=policy)
        except ValueError as e:
            raise UserError(str(e)) from None
    m = session.machine
    cfg = getattr(m, "config", None)
    if cfg is not None and dataclasses.is_dataclass(cfg):
        changes = {k: v for k, v in (("kernel", kernel), ("policy", policy)) if v is not None}
        bad = [k for k in changes if not hasattr(cfg, k)]
        if bad:
            raise UserError(f"this machine's configuration has no {', '.join(bad)} setting")
        cfg2 = dataclasses.replace(cfg, **changes)
        label = ", ".join(f"{k} {v}" for k, v in changes.items())
        return Session(lambda: type(m)(cfg2), session.ops, name=f"{session.name} [{label}]",
                       source=session.source)
    raise UserError("this session cannot be re-run under another profile or policy")


def settings_of(session: Session) -> dict[str, str]:
    m = session.machine
    arch = m.arch
    ts = getattr(session, "target_settings", None) or {}
    pol = ts.get("policy") or getattr(getattr(m, "config", None), "policy", None)
    if pol is None:
        fp = getattr(arch, "fold_policy", None)
        pol = getattr(fp, "name", None) if fp is not None else None
    return {"kernel": arch.profile.name, "cpu": arch.cpu.name, "granule": arch.g.name,
            "policy": str(pol or "mainline")}


def first_divergence(a: Session, b: Session) -> tuple[int | None, str]:
    """(op index, reason) of the first op after which the two states differ."""
    n = min(len(a.records), len(b.records))
    for k in range(n):
        if a.records[k].digest != b.records[k].digest:
            return k, "page tables differ after this op"
    for s, label in ((a, "A"), (b, "B")):
        if s.error is not None and s.error[0] <= n:
            return s.error[0], f"op fails in {label}: {s.error[1]}"
    if len(a.records) != len(b.records):
        return n, "one session stopped early"
    return None, "no divergence"


def diff_addrs(a: Session, b: Session) -> set[tuple[str, int]]:
    """(process, VA) of every descriptor that differs between the two live machines."""
    out: set[tuple[str, int]] = set()
    pa = {p.name: p for p in a.machine.process_list()}
    pb = {p.name: p for p in b.machine.process_list()}
    g = a.machine.arch.g
    for name in set(pa) | set(pb):
        ta = pa[name].mm.pt.tables if name in pa else {}
        tb = pb[name].mm.pt.tables if name in pb else {}
        for key in set(ta) | set(tb):
            x, y = ta.get(key), tb.get(key)
            if x == y:
                continue
            base = key << g.pmd_shift
            n = g.ptrs_per_pte
            for i in range(n):
                va = x[i] if x is not None else 0
                vb = y[i] if y is not None else 0
                if va != vb:
                    out.add((name, base + i * g.page_size))
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


def run_compare(a: Session, make_b: Callable[[], Session], label_b: str,
                report: Callable[[int, int], None] | None = None, b: Session | None = None) -> CompareResult:
    """Run both to the end, find the first divergence, put both just after it."""
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
    target = Position(n if first is None else min(n, first + 1))
    return _place_both(a, b, before_a, target, first, reason, label_b, interrupted)


def _place_both(a: Session, b: Session, before_a: Position, target: Position, first: int | None,
                reason: str, label_b: str, interrupted: bool = False) -> CompareResult:
    before_b = b.position
    for s in (a, b):
        with contextlib.suppress(SessionError):
            s.seek(Position(min(target.op, s.executed)))
    ma = gather(a, before_a)
    mb = gather(b, before_b)
    return CompareResult(a, b, first, reason, ma, mb, diff_addrs(a, b), label_b, interrupted)


def step_both(res: CompareResult, delta: int) -> CompareResult:
    target = Position(max(0, min(res.a.n_ops, res.a.k + delta)))
    return _place_both(res.a, res.b, res.a.position, target, res.first, res.reason, res.label_b)


def seek_both(res: CompareResult, op: int) -> CompareResult:
    return _place_both(res.a, res.b, res.a.position, Position(op), res.first, res.reason, res.label_b)
