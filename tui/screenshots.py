# SPDX-License-Identifier: GPL-2.0-only
"""Export SVG screenshots of the TUI (for docs/screenshots/).

    python -m tui.screenshots [OUT_DIR] [--target example|demo]

Runs the app headless. On the built-in example trace it saves: the main
screen mid-fold at 120x40 (break-before-make zeros visible), the main screen
at 200x60 at the end of the session, the inspector zoomed out, the help
screen and the comparison screen (policy mainline vs never). On the demo
scenario (the README's pictures): mid-convert at 120x40, just after the fork
at 200x60, and the comparison with v6.9.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from engine.session import Position
from tui.pilot import settle as _settle

Shot = tuple[str, tuple[int, int], Callable[[Any], Awaitable[None]]]


def _demo_shots() -> list[Shot]:
    """The README's pictures: the built-in demo scenario on the core-mm machine."""

    async def mid_convert(app: Any) -> None:
        main = app.main
        s = main.session
        s.add_breakpoint("event:convert")
        hit = s.continue_()
        s.breakpoints.clear()
        if hit is not None:
            main.seek(Position(hit.op, hit.position.event + 12))  # inside the break-before-make
        await app._settle()
        if hit is not None:
            main.go_to_address(hit.event[1])

    async def after_fork(app: Any) -> None:
        main = app.main
        s = main.session
        k = next((i for i, op in enumerate(s.ops) if op.verb == "fork"), 0)
        main.seek(Position(k + 3))
        await app._settle()

    async def compare(app: Any) -> None:
        app.main.compare_with(kernel="v6.9")

    return [
        ("demo-120x40", (120, 40), mid_convert),
        ("demo-200x60", (200, 60), after_fork),
        ("demo-compare-120x40", (120, 40), compare),
    ]


def _shots(va: int) -> list[Shot]:
    async def mid_fold(app: Any) -> None:
        main = app.main
        main.seek(Position(18, 34))
        await app._settle()
        main.go_to_address(va + 0x10000)

    async def at_end(app: Any) -> None:
        main = app.main
        main.add_breakpoint(f"block:{va + 0x40000:#x}")
        main.seek(Position(42))
        await app._settle()
        main.go_to_address(va + 0x43000)

    async def zoomed(app: Any) -> None:
        main = app.main
        main.seek(Position(42))
        await app._settle()
        main.go_to_address(va + 0x40000)
        main.action_zoom(1)

    async def compare(app: Any) -> None:
        app.main.compare_with(policy="never")

    async def help_(app: Any) -> None:
        app.main.action_help()

    return [
        ("main-120x40-mid-fold", (120, 40), mid_fold),
        ("main-200x60", (200, 60), at_end),
        ("main-120x40-zoomed-out", (120, 40), zoomed),
        ("compare-120x40", (120, 40), compare),
        ("help-120x40", (120, 40), help_),
    ]


async def _take(target: str, name: str, size: tuple[int, int], prepare: Callable[[Any], Awaitable[None]],
                out: Path) -> Path:
    from tui.app import PtlabApp
    from tui.targets import open_target

    app = PtlabApp(open_target(target), use_keymap=False)
    async with app.run_test(size=size) as pilot:
        app._settle = lambda: _settle(app, pilot)  # type: ignore[attr-defined]  # for the prepare steps
        await _settle(app, pilot)
        await prepare(app)
        await _settle(app, pilot)
        await pilot.pause()
        app.clear_notifications()
        await pilot.pause()
        path = out / f"{name}.svg"
        app.save_screenshot(filename=path.name, path=str(out))
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", nargs="?", default="docs/screenshots")
    ap.add_argument("--target", default="example")
    a = ap.parse_args(argv)
    from tui.examples import BASE_VA

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    shots = _demo_shots() if a.target == "demo" else _shots(BASE_VA)
    for name, size, prep in shots:
        p = asyncio.run(_take(a.target, name, size, prep, out))
        print(p)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
