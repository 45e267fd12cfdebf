# SPDX-License-Identifier: GPL-2.0-only
"""Keypress -> repaint latency of the TUI with 1 GiB mapped.

Not collected by pytest (no ``test_`` prefix); run it by hand::

    python tests/perf_tui.py [--gib 1] [--steps 40] [--granule 4K]

It builds a core-mm-shaped machine (one process, one VMA, every block of the
VMA mapped by a folded 64K folio) without the core-mm model, then presses
``n`` repeatedly in a headless app and reports, per step: the job (engine
step + gathering the view, in the worker thread), the UI update on the main
thread (``MainScreen.apply``) and the time until the frame with the new grid
rows has been rendered. ``tests/test_tui_perf.py`` runs a small version.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from array import array
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.ops import Op  # noqa: E402
from engine.pte import PAGE_SHARED, PTE_CONT, pte_mkold  # noqa: E402
from engine.ptep_machine import ApiMachine  # noqa: E402
from engine.session import Session  # noqa: E402

VA = 0x7F0000000000


class BigMachine(ApiMachine):
    """ApiMachine whose process has a VMA and ``size`` bytes mapped, folded."""

    def __init__(self, size: int, granule: str = "4K") -> None:
        super().__init__(granule, "v7.0", "neoverse-n1")
        g = self.sim.g
        n = g.cont_ptes
        ptrs = g.ptrs_per_pte
        base_pfn = 0x100000
        pt = self.sim.mm.pt
        nr_tables = size // g.pmd_size
        for t in range(nr_tables):
            pfn0 = base_pfn + t * ptrs
            for b in range(0, ptrs, n):
                self.sim.folios.add(pfn0 + b, n)
            prot = pte_mkold(PAGE_SHARED) | PTE_CONT
            vals = array("Q", (((pfn0 + i) << g.page_shift) & g.pte_addr_low | prot for i in range(ptrs)))
            pt.tables[(VA >> g.pmd_shift) + t] = vals
        vma = SimpleNamespace(name="heap", start=VA, end=VA + size, prot="rw", anon=True, shared=False)
        self.procs = [SimpleNamespace(name="bench", mm=self.sim.mm, alive=True, vmas=[vma], regions={})]
        self.current = self.procs[0]
        self.sim.mm.name = "bench"


def big_ops(size: int, steps: int, page: int = 4096, seed: int = 1) -> list[Op]:
    """Every other op lands in the 1 MiB shown around the middle of the range (so
    the step changes rows on screen), the others anywhere."""
    rng = random.Random(seed)
    ops = []
    for i in range(steps):
        if i % 4 < 2:
            addr = VA + size // 2 + rng.randrange((1 << 20) // page) * page
        else:
            addr = VA + rng.randrange(size // page) * page
        if i % 2:
            ops.append(Op("walk", {"addr": addr, "write": True}, i + 1, f"walk {addr:#x} write"))
        else:
            ops.append(Op("ptep", {"call": "ptep_set_wrprotect", "a0": addr}, i + 1,
                          f"ptep_set_wrprotect({addr:#x})"))
    return ops


def big_session(size: int = 1 << 30, steps: int = 40, granule: str = "4K") -> Session:
    from engine.granule import granule as to_granule

    g = to_granule(granule)
    return Session(lambda: BigMachine(size, granule), big_ops(size, steps, g.page_size), name="bench-1GiB")


async def measure(session: Session, steps: int, size: tuple[int, int] = (120, 40)) -> dict[str, list[float]]:
    from textual.screen import Screen
    from tui_support import settle

    from tui.app import PtlabApp
    from tui.screens.main import MainScreen
    from tui.widgets.pte_grid import PteGrid

    out: dict[str, list[float]] = {k: [] for k in ("job", "apply", "first row", "frame done", "rows_built")}
    marks: dict[str, float] = {}
    done = asyncio.Event()
    orig_apply = MainScreen.apply
    orig_render = PteGrid.render_line
    orig_refresh = Screen._compositor_refresh

    def compositor_refresh(self):  # type: ignore[no-untyped-def]
        r = orig_refresh(self)
        if "render" in marks and "frame" not in marks and marks.get("apply1", 1e18) <= marks["render"]:
            marks["frame"] = time.perf_counter()
            done.set()
        return r

    def apply(self, r):  # type: ignore[no-untyped-def]
        marks["apply0"] = time.perf_counter()
        orig_apply(self, r)
        marks["apply1"] = time.perf_counter()

    def render_line(self, y):  # type: ignore[no-untyped-def]
        strip = orig_render(self, y)
        marks["render"] = time.perf_counter()
        return strip

    MainScreen.apply = apply  # type: ignore[method-assign]
    PteGrid.render_line = render_line  # type: ignore[method-assign]
    Screen._compositor_refresh = compositor_refresh  # type: ignore[method-assign]
    try:
        app = PtlabApp(session, use_keymap=False)
        async with app.run_test(size=size) as pilot:
            await settle(app, pilot)
            main = app.main
            main.go_to_address(VA + (1 << 29))
            await settle(app, pilot)
            grid = main.grid
            for _ in range(steps):
                built = grid.renders
                marks.clear()
                done.clear()
                t0 = time.perf_counter()
                main.action_step("op")  # what the 'n' binding runs
                await asyncio.wait_for(done.wait(), 10)
                out["job"].append(marks["apply0"] - t0)
                out["apply"].append(marks["apply1"] - marks["apply0"])
                out["first row"].append(marks["render"] - t0)
                out["frame done"].append(marks["frame"] - t0)
                out["rows_built"].append(float(grid.renders - built))
                await settle(app, pilot)
    finally:
        MainScreen.apply = orig_apply  # type: ignore[method-assign]
        PteGrid.render_line = orig_render  # type: ignore[method-assign]
        Screen._compositor_refresh = orig_refresh  # type: ignore[method-assign]
    return out


def report(out: dict[str, list[float]]) -> str:
    lines = []
    for k, v in out.items():
        if k == "rows_built":
            lines.append(f"{k:>10}: mean {statistics.mean(v):.1f}, max {max(v):.0f} per step")
        else:
            ms = sorted(x * 1000 for x in v)
            p90 = ms[int(len(ms) * 0.9)]
            lines.append(f"{k:>10}: median {statistics.median(ms):6.1f} ms   p90 {p90:6.1f} ms")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gib", type=float, default=1.0)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--granule", default="4K")
    a = ap.parse_args()
    size = int(a.gib * (1 << 30))
    t = time.perf_counter()
    s = big_session(size, a.steps + 2, a.granule)
    print(f"built {a.gib} GiB ({a.granule}) in {time.perf_counter() - t:.1f} s")
    out = asyncio.run(measure(s, a.steps))
    print(report(out))


if __name__ == "__main__":
    main()
