# SPDX-License-Identifier: GPL-2.0-only
"""The main screen's dialog flows: every key that asks for something, and what the answer does.

Go to a step, an address or a pfn; find; a block's fold history; the
breakpoint list; save and open a snapshot; export; decode; compare with
another setting; help. Each flow opens its dialog (checking the answer as it
is typed, where it can be checked), then acts on the answer through the
screen -- a seek, a cursor move, or a controller job like every other
session command. Mixed into :class:`tui.screens.main.MainScreen`, whose
attributes and helpers it uses (declared below for the type checker).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.screen import Screen

from engine.breakpoints import BreakpointError
from engine.session import Position, Session
from tui import snapshot_files
from tui.controller import Job, MoveResult, do_seek, gather
from tui.history import BlockHistory, block_history
from tui.screens.inspector_pane import SINCE_MAX_OPS

if TYPE_CHECKING:
    from tui.controller import SessionController
    from tui.grid_model import GridModel
    from tui.screens.inspector_pane import InspectorPane
    from tui.widgets.pte_grid import PteGrid

    _ScreenBase = Screen
else:
    _ScreenBase = object

HISTORY_MAX = 50  # folds/unfolds of the block listed (newest first)


def parse_position(text: str) -> Position:
    """``N`` (op boundary after N ops) or ``N.E`` (E events into op N+1)."""
    t = text.strip()
    if not t:
        raise ValueError("type a step number, e.g. 12 or 12.5")
    op, _, ev = t.partition(".")
    try:
        p = Position(int(op, 0), int(ev, 0) if ev else 0)
    except ValueError:
        raise ValueError(f"{text!r} is not a step (use N or N.E, e.g. 12 or 12.5)") from None
    if p.op < 0 or p.event < 0:
        raise ValueError("steps are not negative")
    return p


def parse_address(text: str) -> int:
    t = text.strip().lower().replace("_", "")
    if not t:
        raise ValueError("type an address, e.g. 0x7f0000010000")
    try:
        v = int(t, 16) if not t.startswith("0x") else int(t, 0)
    except ValueError:
        raise ValueError(f"{text!r} is not a hexadecimal address") from None
    if not 0 <= v < 1 << 64:
        raise ValueError(f"{text!r} does not fit in 64 bits")
    return v


def _export_error(text: str) -> str | None:
    from tui.export_io import ExportError, export_format

    if not text:
        return "a file name, please"
    try:
        export_format(text)
    except ExportError as e:
        return str(e)
    return None


def _decode_error(text: str) -> str | None:
    from tui.decode_text import parse_value
    from tui.errors import UserError

    try:
        parse_value(text)
    except UserError as e:
        return str(e).removeprefix("decode: ")
    return None


class DialogFlows(_ScreenBase):
    """The dialog flows of the main screen (a mixin of MainScreen)."""

    if TYPE_CHECKING:  # MainScreen's, used here
        session: Session
        ctl: SessionController
        model: GridModel
        inspector_pane: InspectorPane
        snapshot_path: str | None
        keymap: dict[str, str]

        @property
        def grid(self) -> PteGrid: ...
        def say(self, message: str, severity: str = "information") -> None: ...
        def apply(self, r: MoveResult) -> None: ...
        def settings(self) -> dict[str, str]: ...
        def update_header(self) -> None: ...
        def inspected_addr(self) -> int | None: ...
        def seek(self, pos: Position) -> None: ...
        def go_to_address(self, addr: int) -> bool: ...
        def action_next_process(self) -> None: ...
        def set_session(self, session: Session) -> None: ...
        def _dialog(self, screen: Screen, callback: Any = None) -> None: ...
        def _require_idle(self, what: str) -> bool: ...
        def _submit(self, label: str, fn: Any) -> None: ...
        def _breakpoints_changed(self) -> None: ...

    # --- going to a step, an address, a pfn ------------------------------------------------
    def action_goto_step(self) -> None:
        from tui.screens.dialogs import InputDialog

        def check(text: str) -> str | None:
            try:
                parse_position(text)
            except ValueError as e:
                return str(e)
            return None

        def done(text: str | None) -> None:
            if text:
                self.seek(parse_position(text))

        self._dialog(InputDialog(
            f"Go to step (0 .. {self.session.n_ops}; N.E = E events into op N+1)",
            placeholder="e.g. 12 or 12.5", value=str(self.session.position), validate=check,
            dialog_id="goto-step"), done)

    def action_goto_addr(self) -> None:
        from tui.screens.dialogs import InputDialog

        def check(text: str) -> str | None:
            try:
                parse_address(text)
            except ValueError as e:
                return str(e)
            return None

        def done(text: str | None) -> None:
            if text:
                self.go_to_address(parse_address(text))

        cur = self.grid.cursor_addr
        self._dialog(InputDialog("Go to virtual address", placeholder="hex, e.g. 7f0000010000",
                                         value=f"{cur:#x}" if cur is not None else "", validate=check,
                                         dialog_id="goto-addr"), done)

    _last_pfn = ""

    def action_goto_pfn(self) -> None:
        from tui.screens.dialogs import InputDialog
        from tui.search import parse_pfn_query

        def check(text: str) -> str | None:
            try:
                parse_pfn_query(text)
            except ValueError as e:
                return str(e)
            return None

        def done(text: str | None) -> None:
            if text:
                self._last_pfn = text
                self.go_to_pfn(*parse_pfn_query(text))

        self._dialog(InputDialog(
            "Go to the entry mapping a pfn or a folio", placeholder="pfn 0x80010 or folio 0x80000",
            value=self._last_pfn, validate=check,
            hint="pfn N: the next entry mapping that page; folio N: the next entry mapping any page of N's "
                 "folio (hex). Again from there: the next mapping, in this process then the others.",
            dialog_id="goto-pfn"), done)

    def go_to_pfn(self, what: str, pfn: int) -> bool:
        from tui.search import find_pfn

        if not self._require_idle("find a pfn"):
            return False
        here = self.grid.cursor_addr if self.model.zoom == 0 else None
        found = find_pfn(self.model, pfn, folio=what == "folio", after=here)
        if found is None:
            self.say(f"{what} {pfn:#x}: not mapped by any process at step {self.session.position}", "warning")
            return False
        proc, va, got = found
        names = self.model.processes()
        while self.model.process != proc and proc in names:  # the mapping is in another process
            self.action_next_process()
        self.go_to_address(va)
        self.say(f"{what} {pfn:#x}: pfn {got:#x} mapped at {va:#x} in {proc}")
        return True

    # --- finding ----------------------------------------------------------------------------
    _last_query = ""

    def action_search(self) -> None:
        from tui.screens.dialogs import InputDialog

        def done(text: str | None) -> None:
            if text:
                self.search(text)

        self._dialog(InputDialog(
            "Find (forward from this step)", placeholder="text of an op, fold, 0x7f0000010000, call:NAME",
            value=self._last_query,
            hint="An event kind (fold, unfold, convert, tlb_conflict ...) finds the next such event; a hex "
                 "address the next event touching its page; KIND:VALUE any breakpoint condition; anything "
                 "else the next op whose text contains it.", dialog_id="search"), done)

    def search(self, query: str, reverse: bool = False) -> None:
        from engine.breakpoints import BreakpointError
        from tui.search import describe_hit, event_query, find

        self._last_query = query
        cond = event_query(self.session, query)
        if cond is not None:
            try:  # a bad condition is said now, not from the worker
                from engine.breakpoints import parse_condition

                g = self.session.machine.arch.g
                parse_condition(cond, g.page_size, g.cont_pte_size, self.session.op_verbs())
            except BreakpointError as e:
                self.say(str(e), "error")
                return

        def fn(s: Session) -> MoveResult:
            before = s.position
            hit, what = find(s, query, reverse)
            msg = f"{what}: {describe_hit(hit)}" if hit is not None else (
                f"{what}: no match {'before' if reverse else 'after'} step {before}")
            return gather(s, before, message=msg)

        self._submit(f"find {query}", fn)

    # --- a block's history -------------------------------------------------------------------
    def action_block_history(self) -> None:
        """Every fold and unfold of the block under the cursor; choosing one goes there."""
        addr = self.inspected_addr()
        if addr is None or self.model.zoom > 0:
            self.say("select one entry (zoom in with +) to see its block's history", "warning")
            return
        key = self.inspector_pane.key(addr)
        hist = self.inspector_pane.history.get(key)
        if hist is None or (not hist.complete and len(hist.entries) < HISTORY_MAX):
            if not self._require_idle("show the block's history"):
                return
            proc = self.model.process
            self.ctl.submit(Job("block history", lambda s: block_history(s, proc, addr, limit=HISTORY_MAX,
                                                                         max_ops=SINCE_MAX_OPS),
                                lambda h: self._show_history(key, h)))
            return
        self._show_history(key, hist)

    def _show_history(self, key: tuple, hist: BlockHistory) -> None:
        from tui.screens.dialogs import ChoiceDialog

        self.inspector_pane.history[key] = hist
        block = key[1]
        if not hist.entries:
            more = "" if hist.complete else f" in the last {hist.scanned} ops"
            self.say(f"block {block:#x} of {key[0]}: never folded or unfolded{more} up to step "
                     f"{self.session.position}")
            return
        choices = [(f"{e.op}.{e.event + 1}",
                    f"{e.kind:<6} step {e.position}  op {e.op + 1} {e.op_text}  │  {e.chain_text()}  │  "
                    f"{e.decision}") for e in hist.entries]

        def done(pos: str | None) -> None:
            if pos:
                self.seek(parse_position(pos))

        older = "" if hist.complete else f" (the last {hist.scanned} ops; older ones not searched)"
        self._dialog(ChoiceDialog(f"Block {block:#x} of {key[0]}: folds and unfolds, newest first{older}",
                                  choices, hint="Enter goes to the step just after it.",
                                  dialog_id="history"), done)

    # --- breakpoints -------------------------------------------------------------------------
    def action_breakpoint_dialog(self) -> None:
        if not self._require_idle("edit breakpoints"):
            return
        from tui.screens.dialogs import BreakpointDialog

        self._dialog(BreakpointDialog(self.session, self._breakpoints_changed))

    # --- snapshots ---------------------------------------------------------------------------
    def action_save_snapshot(self) -> None:
        from tui.screens.dialogs import InputDialog

        def done(path: str | None) -> None:
            if not path:
                return
            from pathlib import Path

            if Path(path).exists() and path != self.snapshot_path:
                from tui.screens.dialogs import ChoiceDialog

                self._dialog(ChoiceDialog(f"{path} exists: replace it?",
                                          [("replace", f"replace {path}"), ("keep", "keep it, do not save")],
                                          dialog_id="overwrite"),
                             lambda k: self.save_snapshot(path) if k == "replace" else self.say("not saved"))
                return
            self.save_snapshot(path)

        self._dialog(InputDialog("Save snapshot to", placeholder="FILE.ptsnap",
                                         value=f"{(self.session.name or 'session').split(':')[0]}.ptsnap",
                                         dialog_id="save"), done)

    def save_snapshot(self, path: str) -> None:
        """Save in a job: the ops not run yet run first (Esc saves the ops done so far)."""
        if not self._require_idle("save"):
            return

        def fail(e: BaseException) -> None:
            if isinstance(e, snapshot_files.SnapshotIOError):
                self.say(f"save failed: {e}", "error")
            elif isinstance(e, OSError):
                self.say(f"save failed: {path}: {e.strerror or e}", "error")
            else:
                self.say(f"save failed: {type(e).__name__}: {e}", "error")
            self._view_after_job()

        def done(message: str) -> None:
            self.snapshot_path = path
            self.update_header()
            self.say(message, "information" if message == f"saved {path}" else "warning")
            self._view_after_job()

        self.ctl.submit(Job("save", lambda s: snapshot_files.save_session(s, path, self.ctl.report),
                            done, fail))

    def _view_after_job(self) -> None:
        """A job that ran ops (and put the session back) may have changed what is cached."""
        self.ctl.submit(Job("view", lambda s: gather(s, s.position), self.apply))

    def action_open_snapshot(self) -> None:
        from tui.screens.dialogs import InputDialog

        def done(path: str | None) -> None:
            if path:
                self.open_snapshot(path)

        self._dialog(InputDialog("Open snapshot", placeholder="FILE.ptsnap", dialog_id="open"), done)

    def open_snapshot(self, path: str) -> None:
        if not self._require_idle("open a snapshot"):
            return
        try:
            s = snapshot_files.load_session(path)
        except snapshot_files.SnapshotIOError as e:
            self.say(f"cannot open {path}: {e}", "error")
            return
        except OSError as e:
            self.say(f"cannot open {path}: {e.strerror or e}", "error")
            return
        view = s.saved_view
        bad = []
        for text in view.get("breakpoints", []):
            try:
                s.add_breakpoint(text)
            except BreakpointError:
                bad.append(text)
        self.snapshot_path = path
        self.set_session(s)
        where = ""
        pos_text = view.get("position")
        if pos_text:
            try:
                pos = parse_position(pos_text)
            except ValueError:
                bad.append(f"position {pos_text!r}")
            else:
                if pos != s.position:
                    self.seek(pos)
                    where = f" at step {pos}"
        n_bp = len(s.breakpoints)
        bps = f" with {n_bp} breakpoint{'s' if n_bp != 1 else ''}" if n_bp else ""
        self.say(f"opened {path}{where}{bps}")
        if bad:
            self.say(f"{path}: ignored what this build cannot use: {', '.join(bad)}", "warning")
        for w in s.warnings:
            self.say(w, "warning")

    # --- export and decode -------------------------------------------------------------------
    def action_export(self) -> None:
        from tui.export_io import FORMATS
        from tui.screens.dialogs import InputDialog

        def done(path: str | None) -> None:
            if path:
                self.export(path)

        base = (self.session.name or "session").split(":")[0].replace("/", "_")
        self._dialog(InputDialog(
            f"Export step {self.session.position} to", placeholder="FILE.txt",
            value=f"{base}-{self.model.process}-step{self.session.position}.txt",
            hint="The extension picks the format: " + ", ".join(
                f"{ext} {fmt if fmt != 'svg' else 'screenshot'}" for ext, fmt in FORMATS.items())
                 + f". Page tables are {self.model.process}'s, as ptlab show prints them.",
            validate=_export_error, dialog_id="export"), done)

    def export(self, path: str) -> None:
        """Write the current step's page tables (a job: big tables take a moment) or a screenshot."""
        from tui.export_io import ExportError, export_format, find_process, render_tables, write_file

        if not self._require_idle("export"):
            return
        try:
            fmt = export_format(path)
        except ExportError as e:
            self.say(str(e), "error")
            return
        if fmt == "svg":
            try:
                write_file(path, self.app.export_screenshot(title=f"ptlab {self.session.name}"))
            except ExportError as e:
                self.say(f"export failed: {e}", "error")
                return
            self.say(f"screenshot saved to {path}")
            return
        proc_name = self.model.process

        def fn(s: Session) -> str:
            text = render_tables(s, find_process(s, proc_name), fmt, s.name or "session")
            write_file(path, text)
            return f"{proc_name} at step {s.position} exported to {path} ({fmt})"

        def fail(e: BaseException) -> None:
            msg = str(e) if isinstance(e, ExportError) else f"{type(e).__name__}: {e}"
            self.say(f"export failed: {msg}", "error")

        self.ctl.submit(Job("export", fn, lambda m: self.say(m), fail))

    def action_decode(self) -> None:
        from tui.screens.dialogs import InputDialog

        addr = self.inspected_addr()
        value = f"{self.model.raw(addr):#018x}" if addr is not None and self.model.zoom == 0 else ""

        def done(text: str | None) -> None:
            if text:
                self.decode(text)

        self._dialog(InputDialog(
            "Decode a raw descriptor (hex)", placeholder="0x00e8000080000f43", value=value,
            hint=f"Decoded with the session's {self.session.machine.arch.g.name} granule and "
                 f"{self.session.machine.arch.profile.name} layout, as ptlab decode does.",
            validate=_decode_error, dialog_id="decode"), done)

    def decode(self, text: str) -> None:
        from engine.decode import decode
        from tui.decode_text import describe, parse_value
        from tui.errors import UserError
        from tui.screens.dialogs import TextDialog

        try:
            value = parse_value(text)
        except UserError as e:
            self.say(str(e), "error")
            return
        arch = self.session.machine.arch
        d = decode(value, arch.g, arch.layout, arch.profile)
        self._dialog(TextDialog("Decoded descriptor", Text(describe(value, d, arch.g.name,
                                                                            arch.profile.name)),
                                        dialog_id="decoded"))

    # --- comparison ----------------------------------------------------------------------------
    compare_start = "tables"  # where a comparison opens: "tables" or "costs" (the dialog's first line)

    def action_compare(self) -> None:
        if not self._require_idle("compare"):
            return
        from engine.arch.profiles import PROFILES
        from engine.hw.cpus import CPUS
        from engine.policy import BUILTIN_POLICIES
        from tui.screens.dialogs import ChoiceDialog
        from tui.variants import granules_for

        st = self.settings()
        at = ("the first page-table divergence" if self.compare_start == "tables"
              else "the first cost divergence")
        other = "cost" if self.compare_start == "tables" else "page-table"
        choices = [("start:", f"▸ opens at {at} (Enter here: the first {other} divergence)")]
        choices += [(f"kernel:{p}", f"kernel  {p:<12} {PROFILES[p].description}")
                    for p in PROFILES if p != st["kernel"]]
        choices += [(f"policy:{p}", f"policy  {p:<12} {cls.description}")
                    for p, cls in BUILTIN_POLICIES.items() if p != st["policy"]]
        choices += [(f"cpu:{p}", f"cpu     {p:<12} {getattr(c, 'description', '')}")
                    for p, c in CPUS.items() if p != st["cpu"]]
        choices += [(f"granule:{g}", f"granule {g:<12} the same ops with {g} pages")
                    for g in granules_for(self.session) if g != st["granule"]]  # (those it is written for)
        choices.append(("other:", "other …  a policy FILE.py:CLASS, a CPU profile FILE.toml, KIND:VALUE"))

        def done(key: str | None) -> None:
            if not key:
                return
            what, _, value = key.partition(":")
            if what == "start":
                self.compare_start = "costs" if self.compare_start == "tables" else "tables"
                self.call_after_refresh(self.action_compare)  # the dialog again, saying the new start
            elif what == "other":
                self.call_after_refresh(self._compare_other)
            else:
                self.compare_with(**{what: value})

        self._dialog(ChoiceDialog(
            f"Compare with (now: {st['kernel']}, {st['policy']}, {st['cpu']}, {st['granule']})", choices,
            hint="Runs the same ops under the other setting; the screen names the first op where the page "
                 "tables differ and the first whose costs differ, and opens at the one chosen above.",
            # (the id follows the start: the dialog reopened by the first line is mounted while the
            # one it replaces is still being removed, and two screens may not share an id)
            dialog_id="compare" if self.compare_start == "tables" else "compare-costs"), done)

    def _compare_other(self) -> None:
        from tui.errors import UserError
        from tui.screens.dialogs import InputDialog
        from tui.variants import parse_variant

        def check(text: str) -> str | None:
            try:
                parse_variant(text, self.settings())
            except UserError as e:
                return str(e)
            return None

        def done(text: str | None) -> None:
            if text:
                self.compare_with(**parse_variant(text, self.settings()))

        self._dialog(InputDialog(
            "Compare with", placeholder="my_policy.py:MyPolicy, my_cpu.toml, kernel:v6.9, granule:16K",
            validate=check, hint="A fold policy file (FILE.py:CLASS), a CPU profile (FILE.toml), or "
                                 "KIND:VALUE with KIND kernel, policy, cpu or granule.",
            dialog_id="compare-other"), done)

    def compare_with(self, kernel: str | None = None, policy: str | None = None, cpu: str | None = None,
                     granule: str | None = None, start: str | None = None) -> None:
        from tui.errors import UserError
        from tui.screens.side_by_side import CompareScreen
        from tui.variants import run_compare, variant

        asked = {"kernel": kernel, "policy": policy, "cpu": cpu, "granule": granule}
        label = ", ".join(f"{k} {v}" for k, v in asked.items() if v is not None)
        try:
            b = variant(self.session, **asked)
        except UserError as e:
            self.say(str(e), "error")
            return
        start = start or self.compare_start

        keep = self.session.position  # where the user was: back there when the comparison closes

        def done(res: Any) -> None:
            if res.interrupted:
                self.say("comparison interrupted", "warning")
                self._after_compare(keep)
                return
            if any(isinstance(sc, CompareScreen) for sc in self.app.screen_stack):
                self.say("a comparison is already open", "warning")  # (two asked for in a row)
                self._after_compare(keep)
                return
            self.app.push_screen(CompareScreen(res, self.ctl), lambda _: self._after_compare(keep))

        self.ctl.submit(Job(f"compare with {label}",
                            lambda s: run_compare(s, lambda: b, label, self.ctl.report, b=b, start=start),
                            done))

    def _after_compare(self, keep: Position) -> None:
        """The comparison moved the shared session (to the divergence, or wherever its cursor
        went): put it back where the user was before opening it."""
        self._submit(f"back to step {keep}", lambda s: do_seek(s, keep))

    # --- help ----------------------------------------------------------------------------------
    def action_help(self) -> None:
        from tui.screens.help import HelpScreen

        self._dialog(HelpScreen(self.keymap))
