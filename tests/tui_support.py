# SPDX-License-Identifier: GPL-2.0-only
"""Helpers shared by the TUI tests: small sessions and an app that settles."""

from __future__ import annotations

import json
from pathlib import Path

from engine.apimachine import ApiMachine, ops_from_vector_trace
from engine.ops import Op
from engine.session import Session

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


async def settle(app, pilot, rounds: int = 400) -> None:  # type: ignore[no-untyped-def]
    """Wait until every session job (and the inspector's history lookup) is done."""
    main = app.main
    for _ in range(rounds):
        if not main.ctl.idle:
            await app.workers.wait_for_complete()
        if main.since_pending and main.ctl.idle:  # fire the debounced history lookup now
            main._request_since()
            continue
        await pilot.pause(0)  # process pending messages; no need to wait for an idle CPU
        if main.ctl.idle and not main.since_pending:
            await pilot.pause(0)
            return
    raise AssertionError("the app did not settle")
