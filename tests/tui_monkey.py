# SPDX-License-Identifier: GPL-2.0-only
"""A monkey for the TUI: random keys, clicks and resizes through Textual's pilot.

Used by tests/test_tui_monkey.py (bounded) and ``scripts/fuzz.py tui`` (long).
Every key the app binds is in the mix (steps, runs, breakpoints, dialogs,
snapshots, comparisons, zoom, help, Esc), plus text and editing keys that land
in dialogs, clicks anywhere on the screen and terminal sizes from tiny to
huge. Quitting is disabled for the run (``q`` would end it early), and the
current directory should be a scratch one (Ctrl-S saves there).

After the storm: nothing escaped (the pilot re-raises app exceptions; the
controller records exceptions from its callbacks), and the session is sound
-- the UI shows the session's real position, the machine matches a fresh run
to that op bit for bit, its invariants hold, and stepping back to op 0 and
forward again reproduces every op's digest.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass, field

# keys the main screen, its widgets, the dialogs and the other screens bind, weighted
STEP_KEYS = ["n"] * 6 + ["b"] * 4 + ["s", "e", "S", "E", "c", "C", "r", "p", "B"]
NAV_KEYS = ["up", "down", "left", "right", "h", "j", "k", "l", "pageup", "pagedown", "home", "end",
            "left_square_bracket", "right_square_bracket", "tab", "shift+tab", "plus", "minus", "enter",
            "space"]
SCREEN_KEYS = ["g", "a", "ctrl+b", "ctrl+s", "ctrl+o", "d", "question_mark", "escape", "escape", "f", "x",
               "delete", "ctrl+p", "v"]
TEXT_KEYS = [*"0123456789abcdefx.:+-_ ", "backspace", "enter", "enter"]


@dataclass
class MonkeyResult:
    target: str
    events: Counter = field(default_factory=Counter)
    final: str = ""
    ops: int = 0
    messages: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        ev = ", ".join(f"{n} {k}" for k, n in sorted(self.events.items()))
        return (f"{self.target}: {sum(self.events.values())} events ({ev}) in {self.seconds:.1f} s, "
                f"ended at step {self.final} of {self.ops}, {self.messages} messages shown")


def _pick(rnd: random.Random) -> tuple[str, object]:
    r = rnd.random()
    # Clicks, resizes and new screens are rarer than keys because they cost
    # Textual ten times more (a click that moves the focus rebuilds the footer).
    if r < 0.32:
        return "key", rnd.choice(STEP_KEYS)
    if r < 0.64:
        return "key", rnd.choice(NAV_KEYS)
    if r < 0.69:
        return "key", rnd.choice(SCREEN_KEYS)
    if r < 0.935:
        return "key", rnd.choice(TEXT_KEYS)
    if r < 0.985:
        return "click", (rnd.randrange(0, 220), rnd.randrange(0, 70))
    return "resize", rnd.choice([(20, 6), (40, 12), (80, 24), (120, 40), (200, 60), (61, 17), (250, 80)])


async def monkey(target: str, events: int, seed: int, size_changes: bool = True,
                 settle_every: int = 25, render_every: float = 0.3) -> MonkeyResult:
    """Run the storm on a fresh app opened on ``target``; AssertionError on any finding."""
    from tui_support import settle

    from tui.app import PtlabApp
    from tui.screens.main import MainScreen
    from tui.targets import open_target

    rnd = random.Random(seed)
    res = MonkeyResult(target)
    session = open_target(target)
    app = PtlabApp(session, use_keymap=False)
    t0 = time.perf_counter()
    quit_main, quit_app = MainScreen.action_quit, PtlabApp.action_quit
    MainScreen.action_quit = lambda self: None  # type: ignore[method-assign]
    PtlabApp.action_quit = lambda self: None  # type: ignore[method-assign,assignment]
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(app, pilot)
            width, height = 120, 40
            for i in range(events):
                kind, what = _pick(rnd)
                _alive(app, i)
                if kind == "resize" and not size_changes:
                    kind, what = "key", "n"
                res.events[kind] += 1
                if kind == "key":
                    _key(app, what)  # type: ignore[arg-type]
                elif kind == "click":
                    x, y = what  # type: ignore[misc]
                    await _click(app, pilot, x % width, y % height)
                else:
                    width, height = what  # type: ignore[misc]
                    _resize(app, width, height)
                if rnd.random() < render_every:  # otherwise the next event comes before this one is handled
                    await pilot.pause(0)
                else:
                    await asyncio.sleep(0)
                if i % settle_every == settle_every - 1:
                    await settle(app, pilot)
                assert app.is_running, f"the app stopped after event {i} ({kind} {what})"
            # leave every dialog and screen, let every job finish
            for _ in range(8):
                if app.screen is app.main:
                    break
                await pilot.press("escape")
                await settle(app, pilot)
            await pilot.resize_terminal(120, 40)
            await settle(app, pilot)
            main = app.main
            assert app.screen is main, f"stuck on screen {app.screen!r}"
            assert main.ctl.errors == [], f"exceptions in UI callbacks: {main.ctl.errors!r}"
            s = main.session
            res.final, res.ops, res.messages = str(s.position), s.n_ops, len(main.messages)
            header = main.header_text()
            assert f"step {s.position} / {s.n_ops}" in header, (header, s.position)
            assert main.oplog.position == s.position, (main.oplog.position, s.position, main.messages[-5:])
            _check_session(s)
    finally:
        MainScreen.action_quit, PtlabApp.action_quit = quit_main, quit_app  # type: ignore[method-assign]
    res.seconds = time.perf_counter() - t0
    return res


def _alive(app, i: int) -> None:  # type: ignore[no-untyped-def]
    """The app is still running with a screen: otherwise report why it ended
    (the error the app stopped on), not the harness's own failure to reach a screen."""
    if not app.is_running or not app._screen_stack:
        exc = getattr(app, "_exception", None)
        raise AssertionError(f"the app stopped before event {i}: {exc!r}") from exc


# Events go in the way the terminal driver sends them, without the pilot's
# wait-for-idle after each (which waits out every job the key started): keys
# arrive faster than a person types, as when one holds a key down.
def _key(app, key: str) -> None:  # type: ignore[no-untyped-def]
    import unicodedata

    from textual import events
    from textual.app import _character_to_key, _get_unicode_name_from_key
    from textual.keys import REPLACED_KEYS

    if len(key) == 1 and not key.isalnum():
        key = _character_to_key(key)
    try:
        char: str | None = unicodedata.lookup(_get_unicode_name_from_key(REPLACED_KEYS.get(key, key)))
    except KeyError:
        char = key if len(key) == 1 else None
    ev = events.Key(key, char)
    ev.set_sender(app)
    app._driver.send_message(ev)


async def _click(app, pilot, x: int, y: int) -> None:  # type: ignore[no-untyped-def]
    from textual.events import Click, MouseDown, MouseUp
    from textual.geometry import Offset
    from textual.pilot import _get_mouse_message_arguments

    screen = app.screen
    if Offset(x, y) not in screen.size.region:
        return
    args = _get_mouse_message_arguments(screen, (x, y), button=1)
    for cls in (MouseDown, MouseUp, Click):
        app.mouse_position = Offset(x, y)
        screen._forward_event(cls(**({**args, "chain": 1} if cls is Click else args)))
        await asyncio.sleep(0)


def _resize(app, width: int, height: int) -> None:  # type: ignore[no-untyped-def]
    from textual.driver import Driver
    from textual.events import Resize
    from textual.geometry import Size

    size = Size(width, height)
    drv: Driver = app._driver
    if hasattr(drv, "_size"):
        drv._size = size  # the headless driver's idea of the terminal
    app.post_message(Resize(size, size))


def _check_session(s) -> None:  # type: ignore[no-untyped-def]
    """The live machine is what a fresh run to the same op gives; invariants
    hold; back to 0 and forward to the end reproduces every recorded digest."""
    from engine.session import Position, Session

    s.interrupt = lambda: False
    k = s.position.op
    fresh = Session(s.make_machine, s.ops)
    fresh.seek(Position(k))
    assert s.machine.digest() == fresh.machine.digest(), f"the live machine is not the state after op {k}"
    assert s.machine.check_invariants() == [] or _expected_violations(s)
    recorded = [r.digest for r in s.records]
    s.seek(Position(0))
    assert s.machine.digest() == Session(s.make_machine, s.ops).machine.digest()
    while not s.at_end:
        s.step("op")
        j = s.position.op - 1
        if j < len(recorded):
            assert s.records[j].digest == recorded[j], f"op {j + 1} replays differently"
    fresh.run()
    assert [r.digest for r in s.records] == [r.digest for r in fresh.records]
    assert s.machine.digest() == fresh.machine.digest()
    s.seek(Position(k))


def _expected_violations(s) -> bool:  # type: ignore[no-untyped-def]
    """Some scenarios demonstrate an invariant violation on purpose (check-15: a fault loop)."""
    return all(v.kind in ("fault-loop",) for v in s.machine.check_invariants())
