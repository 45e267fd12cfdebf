# SPDX-License-Identifier: GPL-2.0-only
"""Helpers shared by the TUI tests: small sessions, and settle() (tui.pilot)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

from engine.ops import Op
from engine.ptep_machine import ApiMachine, ops_from_vector_trace
from engine.session import Session
from tui.app import PtlabApp
from tui.pilot import settle  # noqa: F401 - the tests import it from here

DATA = Path(__file__).resolve().parent / "data" / "ptep-vectors.json"
VA = 0x7F0000000000


def vector_session(index: int) -> Session:
    trace = json.loads(DATA.read_text())["traces"][index]
    return Session(lambda: ApiMachine(trace["granule"], trace["kernel"], trace["cpu"]),
                   ops_from_vector_trace(trace), name=f"vectors:{index}")


def ptep(call: str, *args: object) -> Op:
    d: dict[str, object] = {"call": call}
    for i, a in enumerate(args):
        d[f"a{i}"] = a
    return Op("ptep", d, 0, f"{call}{args}")  # type: ignore[arg-type]


def folio(pfn: int, nr: int) -> Op:
    return Op("add_folio", {"pfn": pfn, "nr": nr}, 0, f"add_folio {pfn:#x} {nr}")


def api_session(ops: list[Op], granule: str = "4K", kernel: str = "v7.0") -> Session:
    return Session(lambda: ApiMachine(granule, kernel, "neoverse-n1"), ops, name="test")


def run(session, body: Callable, size: tuple[int, int] = (120, 40), **kw) -> None:  # type: ignore[type-arg]
    """Open the app on ``session`` in a pilot, settle, run ``body(app, pilot)``; no UI error."""
    async def main() -> None:
        app = PtlabApp(session, use_keymap=False, **kw)
        async with app.run_test(size=size) as pilot:
            await settle(app, pilot)
            await body(app, pilot)
            assert app.main.ctl.errors == []

    asyncio.run(main())


async def press(app, pilot, *keys: str) -> None:  # type: ignore[no-untyped-def]
    for k in keys:
        await pilot.press(k)
        await settle(app, pilot)
