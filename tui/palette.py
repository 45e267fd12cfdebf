# SPDX-License-Identifier: GPL-2.0-only
"""Command palette: every registered action, plus context commands (break on
an event kind, jump to a range, switch process, compare with a profile)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

from tui.actions import MAIN_ACTIONS, key_label

EVENT_KINDS = ("fold", "unfold", "convert", "tlb_conflict", "invariant_violation", "flush_tlb_mm",
               "page_fault", "flush_tlb_range", "tlbi", "warn")


class PtlabCommands(Provider):
    def _main(self):  # type: ignore[no-untyped-def]
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
            yield title, partial(main.run_action, a.action), a.help
        for kind in EVENT_KINDS:
            yield (f"Break on event: {kind}", partial(main.add_breakpoint, f"event:{kind}"),
                   f"stop when a {kind} event happens (event:{kind})")
        for r in main.model.regions:
            yield (f"Jump to range {r.name} {r.start:#x}-{r.end:#x}", partial(main.go_to_address, r.start),
                   r.detail or "")
        for name in main.model.processes():
            if name != main.model.process:
                yield (f"Switch to process {name}", partial(self._switch, main, name), "")
        from engine.arch.profiles import PROFILES
        from engine.policy import BUILTIN_POLICIES

        st = main.settings()
        for p in PROFILES:
            if p != st["kernel"]:
                yield (f"Compare with kernel {p}", partial(main.compare_with, kernel=p),
                       PROFILES[p].description)
        for p, cls in BUILTIN_POLICIES.items():
            if p != st["policy"]:
                yield (f"Compare with policy {p}", partial(main.compare_with, policy=p), cls.description)

    @staticmethod
    def _switch(main, name: str) -> None:  # type: ignore[no-untyped-def]
        names = main.model.processes()
        while main.model.process != name and name in names:
            main.action_next_process()

    async def discover(self) -> Hits:
        for title, fn, help_ in self._commands():
            if title.startswith(("Jump to", "Compare with", "Break on")):
                continue
            yield DiscoveryHit(title, fn, help=help_)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, fn, help_ in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), fn, help=help_)
