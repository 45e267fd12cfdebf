# SPDX-License-Identifier: GPL-2.0-only
"""The inspector's content for one cell, as lines of (text, tags) segments.

Pure: reads the grid model (descriptors as shown, folios) and the fold
explainer; the widget maps tags to theme styles (the same legend table as
the grid) and tests read the plain text.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.decode import decode
from engine.explain import explain_block
from engine.pte import BIT_NAMES_PRESENT
from tui.grid_model import GridModel, Segment
from tui.grid_regions import fmt_size
from tui.legend import BY_NAME, glyph, is_cont

if TYPE_CHECKING:
    from engine.contract import MachineContract
    from engine.explain import BlockExplanation

Line = list[Segment]
EXPLAIN = object()  # "compute the explanation here"


def _t(text: str, *tags: str) -> Segment:
    return (text, tuple(tags))


def _kv(key: str, value: str, *tags: str) -> Line:
    return [_t(f"{key:<9} ", "label"), _t(value, *tags)]


def folio_lines(model: GridModel, raw: int, addr: int, machine: MachineContract | None = None) -> list[Line]:
    """The folio of raw's pfn, read from ``machine`` (default: the model's, at the op boundary;
    inside an op the caller passes the machine as it is at the exact event)."""
    machine = machine if machine is not None else model.machine
    pfn = (raw & model.addr_mask) >> model.page_shift
    head, nr = machine.arch.folios.folio_of(pfn)
    order = nr.bit_length() - 1
    out: list[Line] = [[_t("Folio", "section")]]
    out.append(_kv("head", f"pfn {head:#x}  {nr} page{'s' if nr > 1 else ''} (order {order}, "
                           f"{fmt_size(nr * model.page_size)})"))
    if nr > 1:
        out.append(_kv("pfns", f"{head:#x}-{head + nr - 1:#x}  (this: +{pfn - head})"))
        va0 = addr - (pfn - head) * model.page_size
        out.append(_kv("as VA", f"{va0:#x}-{va0 + nr * model.page_size:#x} if mapped in order"))
    try:
        info = machine.folio_info(pfn)
    except Exception as e:  # a pfn the machine cannot know (ValueError); the inspector never fails
        out.append(_kv("info", f"unavailable ({e})", "dim"))
    else:
        out.extend(_folio_info_lines(info))
    return out


def _folio_info_lines(d: dict[str, Any]) -> list[Line]:
    """What the machine's folio_info says beyond the geometry (the core-mm machine's counts
    and flags; a ptep-call machine has none)."""
    out = []
    for key in ("mapcount", "refcount", "anon", "file", "flags"):
        if key in d:
            v = d[key]
            if isinstance(v, (list, tuple, set)):
                v = " ".join(str(x) for x in v) or "-"
            out.append(_kv(key, str(v)))
    return out


def entry_lines(model: GridModel, addr: int, *, mid_op: bool = False) -> list[Line]:
    raw = model.raw(addr)
    state = model.state_of(addr, raw)
    st = BY_NAME[state]
    cont = is_cont(raw, model.layout)
    out: list[Line] = []
    out.append([_t("PTE ", "section"), _t(f"{addr:#x}", "section"), _t(f"  {model.process}", "dim")])
    out.append([_t("state     ", "label"), _t(glyph(state, cont), state, *(("cont",) if cont else ())),
                _t(f" {st.label}" + (" + CONT" if cont else ""))])
    out.append(_kv("raw", f"{raw:#018x}", "value"))
    if state == "pmd":
        out.append(_kv("", f"no PTE table: PMD leaf for {addr & ~(model.g.pmd_size - 1):#x}-"
                           f"{(addr & ~(model.g.pmd_size - 1)) + model.g.pmd_size:#x} (a huge-page block "
                           "descriptor; decoded below with the PTE layout)", "value"))
    if mid_op and addr in model._overlay:
        out.append(_kv("", f"mid-op value; at the op's start {model.live(addr):#018x}", "value"))
    d = decode(raw, model.g, model.layout)
    out.append(_kv("decoded", f"{d.kind}: {d.summary}"))
    if d.flags:
        out.append(_kv("set", " ".join(d.flags), "on"))
    if d.kind in ("present", "present-invalid"):
        clear = [name for bit, name in reversed(BIT_NAMES_PRESENT) if not raw >> bit & 1]
        out.append(_kv("clear", " ".join(clear), "dim"))
    yes = []
    for k, v in d.fields.items():
        if isinstance(v, bool):
            if v:
                yes.append(k)
            continue
        if isinstance(v, int) and k in ("pfn", "phys", "swp_offset", "leaf_size"):
            v = hex(v)
        out.append(_kv(k, str(v)))
    if yes:
        out.append(_kv("true", " ".join(yes)))
    return out


def block_lines(model: GridModel, addr: int, cursor: bool = True) -> list[Line]:
    start = model.block_start(addr)
    n = model.cont_ptes
    vals = model.entries(start, n)
    ps = model.page_size
    out: list[Line] = [[_t("Block ", "section"), _t(f"{start:#x}-{start + n * ps:#x}", "section"),
                        _t(f"  ({n} entries)", "dim")]]
    per = 32
    idx = (addr - start) // ps
    for r0 in range(0, n, per):
        line: Line = [_t(f"  {r0:>3} ", "dim")]
        for j in range(r0, min(n, r0 + per)):
            v = vals[j]
            a = start + j * ps
            s = model.state_of(a, v)
            c = is_cont(v, model.layout)
            tags = (s,) + (("cont",) if c else ()) + (("changed",) if a in model._changed else ()) + (
                ("cursor",) if cursor and j == idx else ())
            line.append(_t(glyph(s, c), *tags))
        out.append(line)
    valid = [v for v in vals if v & 1]
    present = sum(1 for v in vals if model.layout.pte_present(v))  # the kernel's meaning
    swapped = sum(1 for v in vals if v and not model.layout.pte_present(v))
    conts = sum(1 for v in valid if v >> 52 & 1)
    pfns = [(v & model.addr_mask) >> model.page_shift for v in vals]
    contig = len(valid) == n and all(pfns[j] == pfns[0] + j for j in range(n))
    out.append(_kv("", f"{present} present, {len(valid)} valid, {conts} CONT"
                   + (f", {swapped} swap/migration" if swapped else "") + (
        f"; pfn {pfns[0]:#x}-{pfns[-1]:#x} contiguous" if contig else "")))
    return out


def explain(model: GridModel, addr: int, machine: MachineContract | None = None) -> BlockExplanation | None:
    """The fold explainer for addr's block (engine.explain), or None.

    ``machine``: where to read the block (default the model's, at the op boundary;
    inside an op, the machine at the exact event from tui.exact).
    explain_block takes the page table's writable path, so call it on the
    session's machine only when no session job is running (the UI does; it
    shows the last verdict meanwhile)."""
    machine = machine if machine is not None else model.machine
    proc = next((p for p in machine.process_list() if p.name == model.process), None)
    if proc is None:
        return None
    try:
        return explain_block(machine.arch, proc.mm, addr)
    except Exception:  # pragma: no cover - defensive: never crash the inspector
        return None


def explain_lines(model: GridModel, addr: int, since: str | None, mid_op: bool,
                  ex: Any = EXPLAIN) -> list[Line]:
    out: list[Line] = [[_t("Fold explainer", "section")]]
    if ex is EXPLAIN:
        ex = explain(model, addr)
    if ex is None:
        out.append(_kv("", "computing the state at this event …" if mid_op
                       else "shown when the running job ends", "dim"))
        return out
    if ex.folded:
        out.append([_t("folded ✓ ", "foldable"), _t(f"all {ex.nr} entries valid + CONT")])
    elif ex.foldable:
        out.append([_t("foldable ◇ ", "foldable"), _t("passes every fold check, not folded")])
    else:
        out.append([_t("not folded", "label")])
    for sentence in ex.sentences():
        out.append([_t("  • ", "dim"), _t(sentence)])
    for note in ex.notes:
        out.append([_t("  note: ", "dim"), _t(note)])
    if mid_op:
        out.append([_t("  (as it is at this event, inside the op)", "dim")])
    out.append([_t("  ", "dim"), _t(since or "since …", "dim" if since is None else "value")])
    return out


HISTORY_SHOWN = 3


def history_lines(history: Any) -> list[Line]:
    """The block's last folds and unfolds (tui.history.BlockHistory), newest first."""
    out: list[Line] = [[_t("Block history", "section"),
                        _t("  (w lists all; Enter on one goes there)", "dim")]]
    if history is None:
        out.append(_kv("", "…", "dim"))
        return out
    if not history.entries:
        out.append(_kv("", "never folded or unfolded" + ("" if history.complete
                                                          else f" in the last {history.scanned} ops"), "dim"))
        return out
    for e in history.entries[:HISTORY_SHOWN]:
        out.append([_t(f"  {e.kind:<6} ", "foldable" if e.kind == "fold" else "label"),
                    _t(f"step {e.position}  op {e.op + 1} {e.op_text}")])
        out.append([_t("         ", "dim"), _t(e.chain_text(), "dim")])
        out.append([_t("         ", "dim"), _t(e.decision, "dim")])
    # (the widget draws a line that starts with a short prefix as a hanging indent: the
    # call chain wraps under itself, not back to the pane's edge)
    if len(history.entries) > HISTORY_SHOWN:
        out.append([_t("  … older ones: w", "dim")])
    return out


def aggregate_lines(model: GridModel, addr: int, region: Any = None) -> list[Line]:
    """A zoomed-out cell: only the entries of ``region`` (the range of the cell's row;
    default: the range holding the cell's first or last byte)."""
    n = model.ptes_per_cell
    end = addr + model.cell_bytes
    r = region
    if r is None:
        i = model.region_at(addr)
        if i is None:
            i = model.region_at(end - 1)
        r = model.regions[i] if i is not None else None
    s = model.cell_summary(addr, r)
    if r is not None:
        addr, end = max(addr, r.start), min(end, r.end)
    out: list[Line] = [[_t("Cell ", "section"), _t(f"{addr:#x}-{end:#x}", "section"),
                        _t(f"  {s.total} PTEs ({fmt_size(s.total * model.page_size)})"
                          + (f" of a {n}-PTE cell, the rest outside {r.name}" if r is not None and s.total < n
                             else ""), "dim")]]
    state = s.state()
    ctag = ("cont",) if s.all_cont else ()
    out.append([_t("shows     ", "label"), _t(glyph(state, s.all_cont), state, *ctag),
                _t(f" {BY_NAME[state].label} (most interesting of the cell)")])
    out.append(_kv("present", f"{s.mapped} of {s.total}" + (f"  (+{s.swapped} swap/migration)"
                                                              if s.swapped else "")))
    out.append(_kv("valid", f"{s.valid}"))
    folded = f"{s.cont} ({100 * s.cont // s.valid}% of valid)" if s.valid else "0"
    out.append(_kv("CONT", folded))
    out.append([_t("zoom in (+) to see single entries", "dim")])
    return out


def inspect(model: GridModel, addr: int | None, *, since: str | None = None, mid_op: bool = False,
            header_row: Any = None, width: int = 44, explanation: Any = EXPLAIN,
            machine: MachineContract | None = None, region: Any = None, history: Any = None) -> list[Line]:
    """``machine``: the machine as it is at the position (inside an op: at the exact event,
    from tui.exact; None there while it is being computed)."""
    if addr is None:
        if header_row is not None:
            r = header_row.region
            return [[_t(f"Region {r.name}", "section")], _kv("range", f"{r.start:#x}-{r.end:#x}"),
                    _kv("size", fmt_size(r.size)), _kv("detail", r.detail or "-")]
        return [[_t("nothing mapped", "dim")]]
    if model.zoom > 0:
        lines = aggregate_lines(model, addr, region)
        lines.append([])
        lines.extend(block_lines(model, addr, cursor=False))
        return lines
    # the verdict first: "why is this block (not) folded" is what the inspector is for
    lines = explain_lines(model, addr, since, mid_op, explanation)
    lines.append([])
    lines.extend(history_lines(history))  # who folded / unfolded it: right under the verdict
    lines.append([])
    lines.extend(entry_lines(model, addr, mid_op=mid_op))
    lines.append([])
    lines.extend(block_lines(model, addr))
    raw = model.raw(addr)
    if raw & 1 or model.layout.pte_present(raw):
        lines.append([])
        if mid_op and machine is None:
            lines.append([_t("Folio", "section")])
            lines.append(_kv("", "computing the state at this event …", "dim"))
        else:
            lines.extend(folio_lines(model, raw, addr, machine))
    return lines


def plain(lines: list[Line]) -> str:
    return "\n".join("".join(t for t, _ in line) for line in lines)
