# SPDX-License-Identifier: GPL-2.0-only
"""Random scenarios the guest can express, for ``ptlab crosscheck --random N --seed S``.

Each scenario is written as ``.pts`` text (docs/scenarios.md) and parsed by
:func:`engine.scenario.parse`, so a reproducer is an ordinary scenario file.
Scenario ``i`` of seed ``S`` depends on ``(S, i)`` only. The generator keeps a
small model of every process's mappings (which pages are mapped, with which
protection) and draws only ops that are valid on it: touches of accessible
pages, mprotect/munmap/madvise of mapped ranges, mremap of whole untouched-by-
mprotect mappings to free aligned slots, fork/switch/exit of leaf processes,
splits, collapses of whole PMD-aligned mappings, and mTHP directives over the
granule's sizes. Every scenario is then checked with the translator
(:func:`crosscheck.translate.plan`, which runs the engine); one that does not
translate is drawn again from the same random stream.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from engine.scenario import Scenario, parse

PAGE = {"4K": 4096, "16K": 16384}
SIZES = {  # mapping sizes in pages of the granule
    "4K": (1, 4, 8, 16, 16, 32, 48, 64, 128, 256, 512, 512),
    "16K": (1, 4, 16, 64, 128, 128, 192, 256),
}
MTHP_SIZES = {"4K": ("16K", "32K", "64K", "128K", "256K", "2M"), "16K": ("64K", "256K", "1M", "2M")}
FIXED_BASE = 0x2000_0000  # 'at' slots: FIXED_BASE + k * SLOT, below where the kernel places mappings
SLOT = {"4K": 4 << 20, "16K": 8 << 20}
PMD = {"4K": 2 << 20, "16K": 32 << 20}
MAX_ATTEMPTS = 50


class GenerationError(RuntimeError):
    """No translatable scenario after MAX_ATTEMPTS draws (a bug in the generator)."""


@dataclass
class Mapping:
    pages: list[str | None]  # per page: "rw", "r", "none", or None once unmapped
    shared: bool
    slot: int | None  # the 'at' slot, if placed with 'at'
    aligned: bool  # starts on a PMD boundary
    reshaped: bool = False  # mprotect or a partial munmap happened: no mremap


@dataclass
class Proc:
    name: str
    parent: str | None
    maps: dict[str, Mapping] = field(default_factory=dict)
    alive: bool = True


@dataclass
class RandomScenario:
    """One generated scenario: its name, header lines and op lines."""

    name: str
    header: list[str]
    ops: list[str]

    def text(self, ops: list[str] | None = None, comment: str = "") -> str:
        first = f"# {comment or 'random crosscheck scenario ' + self.name}"
        return "\n".join([first, *self.header, *(self.ops if ops is None else ops)]) + "\n"

    def scenario(self, ops: list[str] | None = None) -> Scenario:
        return parse(self.text(ops), f"{self.name}.pts", self.name)


class _Gen:
    def __init__(self, rng: random.Random, granule: str):
        self.r = rng
        self.g = granule
        self.ps = PAGE[granule]
        self.procs: dict[str, Proc] = {"p0": Proc("p0", None)}
        self.cur = "p0"
        self.ops: list[str] = []
        self.nmap = 0
        self.nfork = 0
        self.slots_used: set[int] = set()  # 'at' slots, shared by every process (a fork inherits them)

    # --- helpers ----------------------------------------------------------------------------
    def size(self, pages: int) -> str:
        b = pages * self.ps
        for unit, shift in (("M", 20), ("K", 10)):
            if b % (1 << shift) == 0:
                return f"{b >> shift}{unit}"
        return hex(b)

    def proc(self) -> Proc:
        return self.procs[self.cur]

    def runs(self, m: Mapping, ok: tuple[str, ...]) -> list[tuple[int, int]]:
        """Maximal runs [a, b) of pages whose protection is in ok."""
        out, a = [], None
        for i, p in enumerate([*m.pages, None]):
            if p is not None and p in ok:
                if a is None:
                    a = i
            elif a is not None:
                out.append((a, i))
                a = None
        return out

    def subrange(self, m: Mapping, ok: tuple[str, ...]) -> tuple[int, int] | None:
        runs = self.runs(m, ok)
        if not runs:
            return None
        a, b = self.r.choice(runs)
        if self.r.random() < 0.3:
            return a, b
        # block-sized pieces are where contpte decisions happen
        lo = self.r.randrange(a, b)
        if self.r.random() < 0.5:
            blk = 16 if self.g == "4K" else 128
            lo = max(a, lo - lo % min(blk, b - a))
        hi = self.r.randrange(lo + 1, b + 1)
        return lo, hi

    def target(self, name: str, m: Mapping, lo: int, hi: int, whole_ok: bool = True) -> str:
        if whole_ok and lo == 0 and hi == len(m.pages) and self.r.random() < 0.5:
            return name
        return f"{name} +{self.size(lo) if lo else '0'} {self.size(hi - lo)}"

    def pick_map(self, pred: Any = None) -> tuple[str, Mapping] | None:
        items = [(n, m) for n, m in self.proc().maps.items()
                 if any(p is not None for p in m.pages) and (pred is None or pred(m))]
        return self.r.choice(items) if items else None

    def free_slot(self) -> int | None:
        free = [k for k in range(16) if k not in self.slots_used]
        return self.r.choice(free) if free else None

    # --- ops --------------------------------------------------------------------------------
    def op_mmap(self) -> bool:
        p = self.proc()
        if sum(1 for m in p.maps.values() if any(x is not None for x in m.pages)) >= 4:
            return False
        pages = self.r.choice(SIZES[self.g])
        shared = self.r.random() < 0.12
        prot = self.r.choices(["rw", "r", "none"], [8, 1, 1])[0]
        name = f"m{self.nmap}"
        words = ["mmap", name, self.size(pages)]
        if prot != "rw":
            words.append(prot)
        if shared:
            words.append("shared")
        slot, aligned = None, False
        if self.r.random() < 0.5:
            slot = self.free_slot()
            if slot is None:
                return False
            addr = FIXED_BASE + slot * SLOT[self.g]
            # PMD aligned, block aligned, or one page off a block
            shift = self.r.choice([0, 0, 16 * self.ps if self.g == "4K" else 128 * self.ps, self.ps])
            if shift + pages * self.ps > SLOT[self.g] or (pages * self.ps >= PMD[self.g]
                                                           and self.r.random() < 0.7):
                shift = 0  # PMD-sized mappings mostly PMD aligned: collapse has something to do
            aligned = shift == 0
            words += ["at", hex(addr + shift)]
            self.slots_used.add(slot)
        self.nmap += 1
        p.maps[name] = Mapping([prot] * pages, shared, slot, aligned)
        self.ops.append(" ".join(words))
        return True

    def op_touch(self) -> bool:
        write = self.r.random() < 0.6
        ok = ("rw",) if write else ("rw", "r")
        pm = self.pick_map(lambda m: bool(self.runs(m, ok)))
        if pm is None:
            return False
        name, m = pm
        rng = self.subrange(m, ok)
        if rng is None:
            return False
        lo, hi = rng
        if lo == 0 and hi == len(m.pages) and self.r.random() < 0.5:
            self.ops.append(f"touch {name} {'write' if write else 'read'}")
        else:
            self.ops.append(f"touch {name} +{self.size(lo) if lo else '0'} {self.size(hi - lo)} "
                            f"{'write' if write else 'read'}")
        return True

    def op_mprotect(self) -> bool:
        pm = self.pick_map()
        if pm is None:
            return False
        name, m = pm
        changed = [i for i, p in enumerate(m.pages) if p not in (None, "rw")]
        if changed and self.r.random() < 0.6:  # and back
            runs = self.runs(m, ("r", "none"))
            lo, hi = self.r.choice(runs)
            prot = "rw"
        else:
            rng = self.subrange(m, ("rw", "r", "none"))
            if rng is None:
                return False
            lo, hi = rng
            prot = self.r.choice(["r", "r", "none", "rw"])
        for i in range(lo, hi):
            m.pages[i] = prot
        m.reshaped = True
        self.ops.append(f"mprotect {name} +{self.size(lo) if lo else '0'} {self.size(hi - lo)} {prot}")
        return True

    def pick_mapped_range(self) -> tuple[str, Mapping, int, int] | None:
        """A mapping and a run of its mapped pages (the draws of every op on a range)."""
        pm = self.pick_map()
        if pm is None:
            return None
        rng = self.subrange(pm[1], ("rw", "r", "none"))
        return None if rng is None else (pm[0], pm[1], rng[0], rng[1])

    def op_munmap(self) -> bool:
        pick = self.pick_mapped_range()
        if pick is None:
            return False
        name, m, lo, hi = pick
        whole = all(p is None for i, p in enumerate(m.pages) if not lo <= i < hi)
        if whole and self.r.random() < 0.5:
            self.ops.append(f"munmap {name}")
        else:
            self.ops.append(f"munmap {name} +{self.size(lo) if lo else '0'} {self.size(hi - lo)}")
        for i in range(lo, hi):
            m.pages[i] = None
        m.reshaped = True
        return True

    def op_madvise(self) -> bool:
        pick = self.pick_mapped_range()
        if pick is None:
            return False
        name, m, lo, hi = pick
        # MADV_FREE is for private anonymous memory only; shmem pages are not reclaimed by the model
        advice = "dontneed" if m.shared else self.r.choice(["dontneed", "free", "cold", "pageout", "pageout"])
        self.ops.append(f"madvise {self.target(name, m, lo, hi)} {advice}")
        return True

    def op_mremap(self) -> bool:
        pm = self.pick_map(lambda m: not m.reshaped and all(p is not None for p in m.pages))
        if pm is None:
            return False
        slot = self.free_slot()
        if slot is None:
            return False
        name, m = pm
        self.slots_used.add(slot)
        m.slot, m.aligned = slot, True
        self.ops.append(f"mremap {name} {FIXED_BASE + slot * SLOT[self.g]:#x}")
        return True

    def op_fork(self) -> bool:
        live = [p for p in self.procs.values() if p.alive]
        if self.nfork >= 2 or len(live) >= 3:
            return False
        self.nfork += 1
        child = f"c{self.nfork}"
        parent = self.proc()
        maps = {n: Mapping(list(m.pages), m.shared, m.slot, m.aligned, m.reshaped)
                for n, m in parent.maps.items()}
        self.procs[child] = Proc(child, parent.name, maps)
        self.ops.append(f"fork {child}")
        return True

    def op_switch(self) -> bool:
        others = [p.name for p in self.procs.values() if p.alive and p.name != self.cur]
        if not others:
            return False
        self.cur = self.r.choice(others)
        self.ops.append(f"switch {self.cur}")
        return True

    def op_exit(self) -> bool:
        leaves = [p for p in self.procs.values() if p.alive and p.parent is not None
                  and not any(c.alive and c.parent == p.name for c in self.procs.values())]
        if not leaves:
            return False
        p = self.r.choice(leaves)
        p.alive = False
        if p.name == self.cur:
            self.ops.append("exit")
            self.cur = p.parent or "p0"
        else:
            self.ops.append(f"exit {p.name}")
        return True

    def op_split(self) -> bool:
        pm = self.pick_map(lambda m: not m.shared)
        if pm is None:
            return False
        name, m = pm
        idx = [i for i, p in enumerate(m.pages) if p is not None]
        i = self.r.choice(idx)
        order = self.r.choice(["", "", " 2"]) if self.g == "4K" else ""
        self.ops.append(f"split {name} +{self.size(i) if i else '0'}{order}")
        return True

    def op_collapse(self) -> bool:
        pmd_pages = PMD[self.g] // self.ps
        pm = self.pick_map(lambda m: m.aligned and not m.shared and len(m.pages) >= pmd_pages
                           and all(p == "rw" for p in m.pages[:pmd_pages]))
        if pm is None:
            return False
        name, _m = pm
        self.ops.append(f"collapse {name} +0")
        return True

    def header(self) -> list[str]:
        h = [f"granule {self.g}"]
        sizes = MTHP_SIZES[self.g]
        chosen = sorted(self.r.sample(sizes, self.r.randint(1, min(3, len(sizes)))),
                        key=lambda s: sizes.index(s))
        h.append("mthp " + " ".join(f"{s}={self.r.choices(['always', 'never', 'inherit'], [6, 2, 1])[0]}"
                                    for s in chosen))
        if self.r.random() < 0.2:
            h.append(f"thp {self.r.choice(['always', 'never'])}")
        return h


WEIGHTS = (("mmap", 5), ("touch", 12), ("mprotect", 4), ("munmap", 2), ("madvise", 4), ("mremap", 1),
           ("fork", 2), ("switch", 2), ("exit", 1), ("split", 1), ("collapse", 3))


def draw(rng: random.Random, granule: str, name: str) -> RandomScenario:
    """One scenario from rng (not yet checked by the translator)."""
    g = _Gen(rng, granule)
    header = g.header()
    g.op_mmap()
    g.op_touch()
    n = rng.randint(4, 18)
    verbs = [v for v, _ in WEIGHTS]
    weights = [w for _, w in WEIGHTS]
    tries = 0
    while len(g.ops) < n and tries < 200:
        tries += 1
        verb = rng.choices(verbs, weights)[0]
        getattr(g, f"op_{verb}")()
    return RandomScenario(name, header, g.ops)


def translates(rs: RandomScenario, profile: str = "v7.0", cpu: str = "qemu-max") -> bool:
    """The translator accepts the scenario (the engine runs it; the guest can express every op)."""
    from crosscheck.translate import Untranslatable, plan
    from engine.errors import ScenarioError

    try:
        plan(rs.scenario(), profile, cpu, rs.header[0].split()[1])
    except (Untranslatable, ScenarioError):
        return False
    return True


def generate_one(seed: int, i: int, granule: str = "4K", profile: str = "v7.0") -> RandomScenario:
    """Scenario i of seed (deterministic), redrawn until it translates."""
    if granule not in PAGE:
        raise ValueError(f"granule {granule!r}: random scenarios are for 4K or 16K")
    rng = random.Random(f"ptlab-crosscheck-{seed}-{i}-{granule}")
    for _ in range(MAX_ATTEMPTS):
        rs = draw(rng, granule, f"random-{seed}-{i}")
        if translates(rs, profile):
            return rs
    raise GenerationError(f"random scenario {i} of seed {seed}: nothing translatable in {MAX_ATTEMPTS} draws")


def generate(n: int, seed: int, granule: str = "4K", profile: str = "v7.0") -> list[RandomScenario]:
    """N translatable scenarios, deterministic from (seed, granule)."""
    return [generate_one(seed, i, granule, profile) for i in range(n)]
