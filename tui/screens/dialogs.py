# SPDX-License-Identifier: GPL-2.0-only
"""Small modal dialogs: one input line (step, address, path), breakpoints,
choosing what to compare with."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from rich.console import RenderableType
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

if TYPE_CHECKING:
    from engine.session import Session

DIALOG_CSS = """
{name} {{ align: center middle; background: $background 60%; }}
{name} > Vertical {{
    width: 84; max-width: 95%; height: auto; max-height: 90%;
    border: round $accent; background: $panel; padding: 1 2;
}}
{name} .title {{ text-style: bold; color: $accent; margin-bottom: 1; }}
{name} .hint {{ color: $foreground 60%; margin-top: 1; }}
{name} .error {{ color: $error; }}
{name} Horizontal {{ height: auto; margin-top: 1; }}
{name} Button {{ margin-right: 1; }}
"""


class InputDialog(ModalScreen[str | None]):
    """Ask for one line; ``validate(text)`` returns an error message or None."""

    DEFAULT_CSS = DIALOG_CSS.format(name="InputDialog")
    BINDINGS = [Binding("escape", "cancel", "cancel")]

    def __init__(self, title: str, *, placeholder: str = "", value: str = "", hint: str = "",
                 validate: Callable[[str], str | None] | None = None, dialog_id: str = "input") -> None:
        super().__init__(id=f"dialog-{dialog_id}")
        self.title_text = title
        self.placeholder = placeholder
        self.value = value
        self.hint = hint
        self.check = validate

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.title_text, classes="title")
            yield Input(value=self.value, placeholder=self.placeholder, id="dialog-input")
            yield Static("", classes="error", id="dialog-error")
            if self.hint:
                yield Static(self.hint, classes="hint")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value.strip()
        if self.check is not None:
            err = self.check(text)
            if err:
                self.query_one("#dialog-error", Static).update(err)
                return
        self.dismiss(text)

    def action_cancel(self) -> None:
        self.dismiss(None)


class BreakpointDialog(ModalScreen[None]):
    """Add a breakpoint in the condition syntax; list and remove existing ones."""

    DEFAULT_CSS = DIALOG_CSS.format(name="BreakpointDialog") + """
    BreakpointDialog OptionList { height: auto; max-height: 10; margin-top: 1; }
    """
    BINDINGS = [Binding("escape", "close", "close"), Binding("delete,x", "remove", "remove selected")]

    HINT = ("event:fold  event:unfold  event:tlb_conflict  call:contpte_convert  op:fork\n"
            "addr:A[-B]  block:A  watch:A[-B]  watch-block:A  proc:NAME  cost:>N\n"
            "& = all at the same point, | = any   e.g.  event:unfold&block:0x7f0000010000")

    def __init__(self, session: Session, on_change: Callable[[], None]) -> None:
        super().__init__(id="dialog-breakpoints")
        self.session = session
        self.on_change = on_change

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Breakpoints", classes="title")
            yield Input(placeholder="condition, e.g. event:fold", id="bp-input")
            yield Static("", classes="error", id="bp-error")
            yield OptionList(id="bp-list")
            yield Static(self.HINT, classes="hint")
            with Horizontal():
                yield Button("Add", id="bp-add", variant="primary")
                yield Button("Remove selected", id="bp-remove")
                yield Button("Close", id="bp-close")

    def on_mount(self) -> None:
        self._refresh_list()
        self.query_one(Input).focus()

    def _refresh_list(self) -> None:
        ol = self.query_one("#bp-list", OptionList)
        ol.clear_options()
        bps = self.session.breakpoints
        if not bps:
            ol.add_option(Option("(no breakpoints)", disabled=True))
        for b in bps:
            ol.add_option(Option(f"{b.describe()}   hits {b.hits}", id=f"bp{b.id}"))

    def add(self, text: str) -> bool:
        from engine.breakpoints import BreakpointError

        err = self.query_one("#bp-error", Static)
        if not text:
            err.update("type a condition first")
            return False
        try:
            bp = self.session.add_breakpoint(text)
        except BreakpointError as e:
            err.update(str(e))
            return False
        err.update(f"added {bp.describe()}")
        self.query_one(Input).value = ""
        self._refresh_list()
        self.on_change()
        return True

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.add(event.value.strip())

    def action_remove(self) -> None:
        ol = self.query_one("#bp-list", OptionList)
        if ol.highlighted is None:
            return
        opt = ol.get_option_at_index(ol.highlighted)
        if opt.id and opt.id.startswith("bp"):
            self.session.remove_breakpoint(int(opt.id[2:]))
            self._refresh_list()
            self.on_change()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "bp-add":
            self.add(self.query_one(Input).value.strip())
        elif event.button.id == "bp-remove":
            self.action_remove()
        else:
            self.dismiss(None)

    def action_close(self) -> None:
        self.dismiss(None)


class ChoiceDialog(ModalScreen[str | None]):
    """Pick one of several labelled choices (returns its key)."""

    DEFAULT_CSS = DIALOG_CSS.format(name="ChoiceDialog") + """
    ChoiceDialog OptionList { height: auto; max-height: 20; }
    """
    BINDINGS = [Binding("escape", "cancel", "cancel")]

    def __init__(self, title: str, choices: list[tuple[str, str]], hint: str = "",
                 dialog_id: str = "choice") -> None:
        super().__init__(id=f"dialog-{dialog_id}")
        self.title_text = title
        self.choices = choices
        self.hint = hint

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.title_text, classes="title")
            yield OptionList(*[Option(Text(label, no_wrap=True, overflow="ellipsis"), id=key)
                               for key, label in self.choices], id="choices")
            if self.hint:
                yield Static(self.hint, classes="hint")

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)


class TextDialog(ModalScreen[None]):
    """Show a block of text (a decoded descriptor ...) until Esc or Enter."""

    DEFAULT_CSS = DIALOG_CSS.format(name="TextDialog") + """
    TextDialog VerticalScroll { height: auto; max-height: 30; }
    """
    BINDINGS = [Binding("escape,enter,q", "close", "close")]

    def __init__(self, title: str, body: RenderableType, hint: str = "Esc closes",
                 dialog_id: str = "text") -> None:
        super().__init__(id=f"dialog-{dialog_id}")
        self.title_text = title
        self.body = body
        self.hint = hint

    def compose(self) -> ComposeResult:
        from textual.containers import VerticalScroll

        with Vertical():
            yield Label(self.title_text, classes="title")
            with VerticalScroll():
                yield Static(self.body, id="dialog-text")
            if self.hint:
                yield Static(self.hint, classes="hint")

    def action_close(self) -> None:
        self.dismiss(None)
