# SPDX-License-Identifier: GPL-2.0-only
"""Driving the app headless through Textual's pilot (tests, screenshots, benchmarks)."""

from __future__ import annotations

from typing import Any


async def settle(app: Any, pilot: Any, rounds: int = 400) -> None:
    """Wait until every session job (and the inspector's history lookup) is done.

    AssertionError if the app is still busy after ``rounds`` passes (a job
    that never ends is a bug worth failing on, not a picture or a timing to take)."""
    main = app.main
    for _ in range(rounds):
        if not main.ctl.idle:
            await app.workers.wait_for_complete()
        if main.inspector_pane.since_pending and main.ctl.idle:  # fire the debounced history lookup now
            main.inspector_pane.request_since()
            continue
        await pilot.pause(0)  # process pending messages; no need to wait for an idle CPU
        if main.ctl.idle and not main.inspector_pane.since_pending:
            await pilot.pause(0)
            return
    raise AssertionError("the app did not settle")
