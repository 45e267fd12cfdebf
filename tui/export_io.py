# SPDX-License-Identifier: GPL-2.0-only
"""Export what the session shows at its current step: the page tables of one
process as ptdump text, JSON or CSV (what ``ptlab show`` prints), or an SVG
screenshot of the TUI. The format follows the file name's extension.

Files are written through :class:`snapshots.fsio.AtomicFile`, so a failed
export (full disk, permission denied) leaves any previous file in place and
reports one line.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

from engine.export import ptdump, to_csv, to_json
from engine.state.pagetable import PageTable

if TYPE_CHECKING:
    from engine.contract import MachineProcess
    from engine.session import Session

# extension -> format
FORMATS = {".txt": "ptdump", ".ptdump": "ptdump", ".json": "json", ".csv": "csv", ".svg": "svg"}


class ExportError(Exception):
    """One line for the user."""


def export_format(path: str) -> str:
    ext = os.path.splitext(path)[1].lower()
    fmt = FORMATS.get(ext)
    if fmt is None:
        raise ExportError(f"{path}: unknown export format {ext or '(no extension)'!r}; use "
                          + ", ".join(sorted(FORMATS)))
    return fmt


def tables_at_step(session: Session, proc: MachineProcess) -> PageTable:
    """The process's page table as it is at the session's position: mid-op,
    the descriptors the op has written so far (a convert's zeroed entries
    included) replace the stored ones."""
    pt = proc.mm.pt
    overlay = {a: v for (name, a), v in session.overlay().items() if name == proc.name}
    if overlay:
        pt = PageTable.from_plain(pt.g, pt.to_plain())
        for a, v in overlay.items():
            pt.set(a, v)
    return pt


def find_process(session: Session, name: str | None) -> MachineProcess:
    """The named process at the current step, else the current (or first) one."""
    m = session.machine
    procs = m.process_list()
    if not procs:
        raise ExportError("no process exists at this step")
    if name:
        proc = next((p for p in procs if p.name == name), None)
        if proc is None:
            raise ExportError(f"no process {name!r} at this step "
                              f"(processes: {', '.join(p.name for p in procs)})")
        return proc
    cur = m.current
    return cur if cur is not None and cur in procs else procs[0]


def render_tables(session: Session, proc: MachineProcess, fmt: str, target: str, start: int = 0,
                  end: int = 1 << 64) -> str:
    """The text ``ptlab show`` prints for this process and step."""
    m = session.machine
    pt = tables_at_step(session, proc)
    layout = m.arch.layout
    vmas = proc.vmas
    if fmt == "ptdump":
        head = (f"# {session.name}: {proc.name} at step {session.position} "
                f"({m.arch.profile.name}, {m.arch.g.name})\n")
        return head + ptdump(pt, layout, vmas, start, end)
    if fmt == "json":
        d = to_json(pt, layout, vmas, start, end)
        d.update({"target": target, "process": proc.name, "step": str(session.position),
                  "kernel": m.arch.profile.name, "granule": m.arch.g.name})
        return json.dumps(d) + "\n"
    if fmt == "csv":
        return to_csv(pt, layout, vmas, start, end)
    raise ExportError(f"cannot render page tables as {fmt!r}")


def write_file(path: str, text: str) -> None:
    """Replace ``path`` with ``text`` atomically; ExportError on failure."""
    from snapshots.errors import SnapshotWriteError
    from snapshots.fsio import AtomicFile

    try:
        f = AtomicFile(path)
        try:
            f.write(text.encode())
            f.commit()
        except BaseException:
            f.discard()
            raise
    except SnapshotWriteError as e:
        raise ExportError(str(e).replace("cannot save", "cannot export", 1)) from None
