# SPDX-License-Identifier: GPL-2.0-only
"""Command palette: every registered action once, titled with its key, plus
context commands (break on an event kind, jump to a range, switch process,
compare with a profile, policy, CPU or granule)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

from textual.command import DiscoveryHit, Hit, Hits, Provider

from tui.actions import MAIN_ACTIONS, key_label

EVENT_KINDS = ("fold", "unfold", "convert", "tlb_conflict", "invariant_violation", "flush_tlb_mm",
               "page_fault", "flush_tlb_range", "tlbi", "warn")


def an_event(kind: str) -> str:
    """"a fold event", "an unfold event": the article follows the sound of the kind's name
    (every kind here starts with a vowel letter that is also a vowel sound, or a consonant)."""
    return f"{'an' if kind[:1] in 'aeiou' else 'a'} {kind} event"


class PtlabCommands(Provider):
    def _main(self):
        from tui.screens.main import MainScreen

        for s in self.app.screen_stack:
            if isinstance(s, MainScreen):
                return s
        return None

    def _commands(self) -> Iterator[tuple[str, Callable[[], object], str]]:
        main = self._main()
        if main is None:
            return
        keymap = getattr(main, "keymap", {})
        for a in MAIN_ACTIONS:
            if not a.palette or a.id == "interrupt" and not main.ctl.busy:
                continue
            title = f"{a.help}  ({key_label(a, keymap)})"  # (not [key]: "[/]" is markup)
            yield title, partial(main.run_action, a.action), ""  # (the help would repeat the title)
        for kind in EVENT_KINDS:
            yield (f"Break on event: {kind}", partial(main.add_breakpoint, f"event:{kind}"),
                   f"stop at {an_event(kind)} (event:{kind})")
        for r in main.model.regions:
            yield (f"Jump to range {r.name} {r.start:#x}-{r.end:#x}", partial(main.go_to_address, r.start),
                   r.detail or "")
        for name in main.model.processes():
            if name != main.model.process:
                yield (f"Switch to process {name}", partial(self._switch, main, name), "")
        from engine.arch.profiles import PROFILES
        from engine.hw.cpus import CPUS
        from engine.policy import BUILTIN_POLICIES
        from tui.variants import granules_for

        st = main.settings()
        for p in PROFILES:
            if p != st["kernel"]:
                yield (f"Compare with kernel {p}", partial(main.compare_with, kernel=p),
                       PROFILES[p].description)
        for p, cls in BUILTIN_POLICIES.items():
            if p != st["policy"]:
                yield (f"Compare with policy {p}", partial(main.compare_with, policy=p), cls.description)
        for p, c in CPUS.items():
            if p != st["cpu"]:
                yield (f"Compare with CPU {p}", partial(main.compare_with, cpu=p), c.description)
        for g in granules_for(main.session):  # (those the scenario is written for)
            if g != st["granule"]:
                yield (f"Compare with granule {g}", partial(main.compare_with, granule=g), "")

    @staticmethod
    def _switch(main: Any, name: str) -> None:
        names = main.model.processes()
        while main.model.process != name and name in names:
            main.action_next_process()

    async def discover(self) -> Hits:
        for title, fn, help_ in self._commands():
            if title.startswith(("Jump to", "Compare with", "Break on")):
                continue
            yield DiscoveryHit(title, fn, help=help_ or None)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, fn, help_ in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), fn, help=help_ or None)
