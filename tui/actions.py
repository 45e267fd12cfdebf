# SPDX-License-Identifier: GPL-2.0-only
"""The one registry of user actions: key bindings, footer, command palette
and help screen are all built from :data:`MAIN_ACTIONS`.

Each action has a stable id (``ptlab.<id>``) that a keymap file can rebind
(see :mod:`tui.keymap`).
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding

_STEP = Binding.Group("step", compact=True)
_BACK = Binding.Group("back", compact=True)
_RUN = Binding.Group("cont", compact=True)
_GOTO = Binding.Group("goto", compact=True)
_BREAK = Binding.Group("bp", compact=True)
_ZOOM = Binding.Group("zoom", compact=True)
_SNAP = Binding.Group("snap", compact=True)


@dataclass(frozen=True)
class ActionSpec:
    id: str  # binding id suffix: ptlab.<id>
    keys: str  # default keys, Textual names, comma separated
    action: str  # action on the main screen
    description: str  # footer / palette title
    help: str  # help screen and palette help
    key_display: str | None = None
    show: bool = True  # in the footer
    group: Binding.Group | None = None
    palette: bool = True

    @property
    def binding_id(self) -> str:
        return f"ptlab.{self.id}"


MAIN_ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("step", "n", "step('op')", "op", "Step one op forward (runs it)", group=_STEP),
    ActionSpec("step_call", "s", "step('call')", "call", "Step into: to the next arch / core-mm call",
               group=_STEP),
    ActionSpec("step_event", "e", "step('event')", "event", "Step one event (a single PTE write, TLBI ...)",
               group=_STEP),
    ActionSpec("back", "b", "back('op')", "op", "Step back one op", group=_BACK),
    ActionSpec("back_call", "S", "back('call')", "call", "Step back to the previous call", group=_BACK),
    ActionSpec("back_event", "E", "back('event')", "event", "Step back one event", group=_BACK),
    ActionSpec("continue", "c", "continue_run", "cont", "Continue to the next breakpoint (or the end)",
               group=_RUN),
    ActionSpec("reverse_continue", "C", "reverse_continue", "rev",
               "Reverse-continue to the previous breakpoint (or the start)", group=_RUN),
    ActionSpec("run_end", "r", "run_to_end", "end", "Run to the end of the session"),
    ActionSpec("goto_step", "g", "goto_step", "step", "Go to a step: N or N.E (op N, event E)", group=_GOTO),
    ActionSpec("goto_addr", "a", "goto_addr", "addr", "Go to a virtual address", group=_GOTO),
    ActionSpec("bp_block", "B", "toggle_block_breakpoint", "block",
               "Set / clear a breakpoint on the selected block (block:ADDR)", group=_BREAK),
    ActionSpec("bp_dialog", "ctrl+b", "breakpoint_dialog", "…",
               "Breakpoints: add one in the breakpoint syntax, list, remove", group=_BREAK),
    ActionSpec("search", "slash", "search", "find",
               "Find: the next op whose text matches, or event kind (fold), address, or condition (call:X)",
               key_display="/"),
    ActionSpec("next_fold", "f", "jump_fold(False)", "fold→", "Next fold or unfold (any block)"),
    ActionSpec("prev_fold", "F", "jump_fold(True)", "←fold", "Previous fold or unfold (any block)",
               show=False),
    ActionSpec("next_fold_only", "o", "jump_event('fold', False)", "fold", "Next fold (any block)",
               show=False),
    ActionSpec("prev_fold_only", "O", "jump_event('fold', True)", "←fold", "Previous fold (any block)",
               show=False),
    ActionSpec("next_unfold", "u", "jump_event('unfold', False)", "unfold", "Next unfold (any block)",
               show=False),
    ActionSpec("prev_unfold", "U", "jump_event('unfold', True)", "←unfold", "Previous unfold (any block)",
               show=False),
    ActionSpec("next_convert", "t", "jump_event('convert', False)", "convert",
               "Next contpte_convert (any block)", show=False),
    ActionSpec("prev_convert", "T", "jump_event('convert', True)", "←convert",
               "Previous contpte_convert (any block)", show=False),
    ActionSpec("next_foldable", "z", "jump_foldable(False)", "◇→",
               "Next block that could fold but is not folded (◇), at this step", show=False),
    ActionSpec("prev_foldable", "Z", "jump_foldable(True)", "←◇",
               "Previous block that could fold but is not folded (◇), at this step", show=False),
    ActionSpec("goto_pfn", "P", "goto_pfn", "pfn",
               "Go to the entry mapping a pfn, or any page of a folio (again: the next mapping)",
               group=_GOTO),
    ActionSpec("copy", "y", "copy(False)", "copy",
               "Copy the descriptor under the cursor (0x... hex) to the clipboard"),
    ActionSpec("copy_addr", "Y", "copy(True)", "copy VA",
               "Copy the address under the cursor to the clipboard", show=False),
    ActionSpec("history", "w", "block_history", "why",
               "Why: every fold and unfold of the selected block (op, call chain, policy); Enter goes there"),
    ActionSpec("process", "p", "next_process", "proc", "Switch to the next process"),
    ActionSpec("zoom_in", "plus,equals_sign", "zoom(-1)", "in", "Zoom in (fewer PTEs per cell)",
               key_display="+", group=_ZOOM),
    ActionSpec("zoom_out", "minus", "zoom(1)", "out", "Zoom out: each cell summarises more PTEs",
               key_display="-", group=_ZOOM),
    ActionSpec("save", "ctrl+s", "save_snapshot", "save", "Save a snapshot (.ptsnap)", group=_SNAP),
    ActionSpec("open", "ctrl+o", "open_snapshot", "open", "Open a snapshot (.ptsnap)", group=_SNAP),
    ActionSpec("export", "x", "export", "export",
               "Export this step: page tables as ptdump text (.txt), JSON or CSV, or the screen as SVG",
               group=_SNAP),
    ActionSpec("decode", "v", "decode", "decode",
               "Decode a raw descriptor (the one under the cursor, or any value typed in)", show=False),
    ActionSpec("compare", "d", "compare", "diff",
               "Compare this run under another kernel, policy, CPU or granule, side by side"),
    ActionSpec("help", "question_mark,f1", "help", "help", "Keys, legend and breakpoint syntax",
               key_display="?"),
    ActionSpec("quit", "q", "quit", "quit", "Quit ptlab"),
    ActionSpec("interrupt", "escape", "interrupt", "stop", "Interrupt a long run", key_display="esc"),
)

BY_ID: dict[str, ActionSpec] = {a.id: a for a in MAIN_ACTIONS}


def bindings(actions: tuple[ActionSpec, ...] = MAIN_ACTIONS) -> list[Binding]:
    out = []
    for a in actions:
        out.append(Binding(a.keys, a.action, a.description, show=a.show, key_display=a.key_display,
                           id=a.binding_id, tooltip=a.help, group=a.group))
    return out


def key_label(a: ActionSpec, keymap: dict[str, str] | None = None) -> str:
    keys = (keymap or {}).get(a.binding_id, a.keys)
    if a.key_display and (keymap is None or a.binding_id not in keymap):
        return a.key_display
    return keys.split(",")[0]
