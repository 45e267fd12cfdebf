# SPDX-License-Identifier: GPL-2.0-only
"""The ptlab Textual app: one session, the main screen, the keymap."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from textual.app import App, SystemCommand
from textual.screen import Screen

from engine.session import Session
from tui.compat import patch_textual
from tui.keymap import load_keymap
from tui.palette import PtlabCommands

patch_textual()


class PtlabApp(App[None]):
    TITLE = "ptlab"
    CSS_PATH = "app.tcss"
    COMMANDS = App.COMMANDS | {PtlabCommands}
    ENABLE_COMMAND_PALETTE = True

    def __init__(self, session: Session, *, keymap_path: Path | None = None, use_keymap: bool = True,
                 theme: str | None = None) -> None:
        super().__init__()
        self.session = session
        self.keymap_path = keymap_path
        self.use_keymap = use_keymap
        self._keymap: dict[str, str] = {}
        self._keymap_warnings: list[str] = []
        if use_keymap:
            self._keymap, self._keymap_warnings = load_keymap(keymap_path)
        if theme:
            self.theme = theme

    def on_mount(self) -> None:
        from tui.screens.main import MainScreen

        if self._keymap:
            self.set_keymap(self._keymap)
        self.push_screen(MainScreen(self.session, self._keymap))
        for w in self._keymap_warnings:
            self.notify(w, severity="warning", timeout=10, markup=False)  # a path may hold '['

    # Textual's own commands that ptlab's registry already offers with a key: Quit (q) and
    # Keys (? is ptlab's help, with the legend): each command once in the palette.
    _DUPLICATE_SYSTEM_COMMANDS = frozenset({"Quit", "Keys"})

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        for c in super().get_system_commands(screen):
            if c.title not in self._DUPLICATE_SYSTEM_COMMANDS:
                yield c

    @property
    def main(self):
        from tui.screens.main import MainScreen

        for s in self.screen_stack:
            if isinstance(s, MainScreen):
                return s
        raise LookupError("no main screen")
