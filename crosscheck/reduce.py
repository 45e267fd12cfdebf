# SPDX-License-Identifier: GPL-2.0-only
"""Minimal reproducers for diverging random scenarios (delta debugging).

A divergence's *signature* is the kind of its first difference and the verb
of the op it happened at (``("pte", "mprotect")``). Each round, every
scenario still being reduced offers its candidates -- the op list with one
of ``n`` chunks removed (ddmin's complements) -- and all candidates of all
scenarios run in one boot per kernel; a scenario keeps the first candidate
whose first divergence has the same signature and goes on with it, else it
splits its ops finer. Rounds are bounded (:data:`MAX_ROUNDS`), so a
reproducer is small, not necessarily minimal.

Boots are the cost, so one scenario is reduced per kernel and signature (the
one with the fewest ops); the others with that signature are listed beside
its reproducer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crosscheck.randomgen import RandomScenario

MAX_ROUNDS = 6
MAX_CANDIDATES = 16  # per scenario and round


def signature(result: Any) -> tuple[str, str] | None:
    """(what, verb) of the result's first divergence, None if it has none."""
    c = getattr(result, "comparison", None)
    if c is None or not c.divergences:
        return None
    d = c.divergences[0]
    return d.what, (d.text.split() or ["?"])[0]


@dataclass
class Reduction:
    """One diverging scenario on its way to a reproducer."""

    rs: RandomScenario
    index: int  # its number in the campaign
    kernel: Any  # the KernelRun it diverged on
    sig: tuple[str, str]
    ops: list[str]
    first: str  # the first divergence, one line, for the file's comment
    n: int = 2
    done: bool = False
    same: list[str] = field(default_factory=list)  # other scenarios with this signature on this kernel
    path: Path | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"path": str(self.path) if self.path else None, "scenario": self.rs.name,
                "kernel": self.kernel.build.name, "signature": list(self.sig), "ops": len(self.ops),
                "first_divergence": self.first, "same_signature": self.same}

    def candidates(self) -> list[list[str]]:
        ops = self.ops
        if len(ops) <= 1 or self.n > len(ops):
            self.done = True
            return []
        size = -(-len(ops) // self.n)
        out = []
        for k in range(0, len(ops), size):
            out.append(ops[:k] + ops[k + size:])
        return out[:MAX_CANDIDATES]

    def accept(self, cands: list[list[str]], results: list[Any]) -> None:
        for ops, res in zip(cands, results, strict=True):
            if signature(res) == self.sig and ops:
                self.ops = ops
                self.first = describe_first(res)
                self.n = max(self.n - 1, 2)
                return
        if self.n >= len(self.ops):
            self.done = True
        self.n = min(self.n * 2, len(self.ops))


def describe_first(result: Any) -> str:
    d = result.comparison.divergences[0]
    return f"op {d.op} ({d.text}) {d.what}: {d.message}"


def minimize(reductions: list[Reduction],
             run: Callable[[list[Any], Any, str], list[Any]], rounds: int = MAX_ROUNDS) -> None:
    """Shrink every reduction's ops; ``run(scenarios, kernel_run, tag)`` runs a batch in one boot."""
    for rnd in range(rounds):
        by_kernel: dict[int, list[tuple[Reduction, list[list[str]]]]] = {}
        for red in reductions:
            if red.done:
                continue
            cands = red.candidates()
            if cands:
                by_kernel.setdefault(id(red.kernel), []).append((red, cands))
        if not by_kernel:
            return
        for work in by_kernel.values():
            kr = work[0][0].kernel
            scenarios = [red.rs.scenario(ops) for red, cands in work for ops in cands]
            results = run(scenarios, kr, f"-reduce{rnd + 1}")
            i = 0
            for red, cands in work:
                red.accept(cands, results[i:i + len(cands)])
                i += len(cands)


def write_reproducer(red: Reduction, out_dir: Path, seed: int) -> Path:
    path = out_dir / f"crosscheck-repro-{seed}-{red.index}.pts"
    kb = red.kernel.build
    comment = (f"crosscheck reproducer: {red.rs.name} on {kb.name} (engine profile {red.kernel.profile}); "
               f"first divergence: {red.first}")
    comment = "".join(ch if ch.isprintable() else " " for ch in comment)
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".pts.tmp")
    tmp.write_text(red.rs.text(red.ops, comment))
    tmp.replace(path)
    return path


def minimize_all(gen: list[RandomScenario], runs: list[Any],
                 run: Callable[[list[Any], Any, str], list[Any]], out_dir: Path, seed: int,
                 rounds: int = MAX_ROUNDS) -> list[Reduction]:
    """One reproducer file per kernel and signature of first divergence, reduced from
    the diverging scenario with the fewest ops; the others are listed in ``same``."""
    groups: dict[tuple[int, tuple[str, str]], Reduction] = {}
    for kr in runs:
        for i, (rs, res) in enumerate(zip(gen, kr.results, strict=True)):
            sig = signature(res)
            if sig is None:
                continue
            key = (id(kr), sig)
            red = groups.get(key)
            if red is None or len(rs.ops) < len(red.ops):
                new = Reduction(rs, i, kr, sig, list(rs.ops), describe_first(res))
                if red is not None:
                    new.same = [*red.same, red.rs.name]
                groups[key] = new
            else:
                red.same.append(rs.name)
    reds = list(groups.values())
    if not reds:
        return []
    minimize(reds, run, rounds)
    for red in reds:
        red.same.sort(key=lambda n: int(n.rsplit("-", 1)[1]) if n.rsplit("-", 1)[1].isdigit() else 0)
        red.path = write_reproducer(red, out_dir, seed)
    return reds
