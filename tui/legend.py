# SPDX-License-Identifier: GPL-2.0-only
"""The one table of cell states: glyph, colour and legend text.

Everything that draws a PTE state -- the grid, the summarising zoom, the
block siblings in the inspector, the minimap and the legend bar -- reads this
table, so the legend can never disagree with the grid. Glyphs carry the whole
meaning without colour (a colour-blind user or a monochrome terminal loses
nothing); colours are Textual theme variables, so every theme works.

A present, valid descriptor is classified by what is most interesting about
it (dirty over young over writable over plain valid); the CONT bit is shown
orthogonally by the *case* of the glyph (``d`` / ``D``) and by the joiners
drawn between the cells of a folded block.

:data:`PRIORITY` is the fixed order the summarising zoom uses: a cell that
aggregates many descriptors shows the first state in this order that any of
them has -- never a sample.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.pte import PTE_AF, PTE_CONT, PTE_DIRTY, PTE_RDONLY, PTE_SPECIAL, PTE_VALID, PTE_WRITE, Layout


@dataclass(frozen=True)
class CellState:
    name: str  # stable identifier; also the component class suffix
    glyph: str  # one character, shown when the entry is not CONT
    cont_glyph: str  # one character, shown when the entry has PTE_CONT set
    color: str  # TCSS colour expression (theme variables)
    label: str  # short legend text
    help: str  # one line for the help screen
    style: str = ""  # extra TCSS declarations (text-style ...)


# Display order of the legend; PRIORITY below is the aggregation order.
STATES: tuple[CellState, ...] = (
    CellState("none", "·", "·", "$foreground 30%", "none", "pte_none(): no translation"),
    CellState("valid", "r", "R", "$foreground", "valid", "valid, read-only, old, clean"),
    CellState("writable", "w", "W", "$text-primary", "writable", "valid + PTE_WRITE (DBM), old, clean"),
    CellState("young", "y", "Y", "$text-success", "young", "valid + PTE_AF (accessed), clean"),
    CellState("dirty", "d", "D", "$warning", "dirty", "valid + dirty (PTE_DIRTY, or WRITE without RDONLY)",
              "text-style: bold;"),
    CellState("dirtyro", "x", "X", "$warning", "dirty, read-only",
              "valid + PTE_DIRTY, write-protected (no PTE_WRITE): fork's or mprotect's wrprotect; "
              "a write faults",
              "text-style: bold italic;"),
    CellState("special", "$", "$", "$secondary-lighten-3", "special",
              "valid + PTE_SPECIAL (no struct page: never folded)"),
    CellState("protnone", "n", "N", "$text-error", "PROT_NONE",
              "present but invalid: PROT_NONE / NUMA hinting (VALID=0)"),
    CellState("pmd", "H", "H", "$text-accent", "PMD leaf",
              "no PTE table: the whole PMD range is mapped by one huge-page (block) descriptor",
              "text-style: bold;"),
    CellState("swap", "s", "s", "$foreground 65%", "swap", "swap entry (not present)",
              "text-style: italic;"),
    CellState("migration", "m", "m", "$foreground 65%", "migration", "migration entry (not present)",
              "text-style: bold italic;"),
    CellState("cleared", "○", "○", "$text-error", "cleared mid-op",
              "zeroed inside the current op (break-before-make window): valid at the op's start",
              "text-style: bold;"),
    CellState("bad", "!", "!", "$text-error", "not Linux", "VALID=0 but type bits set: no Linux descriptor",
              "text-style: bold reverse;"),
    CellState("outside", " ", " ", "$foreground 20%", "outside", "outside every VMA / mapped range"),
)

BY_NAME: dict[str, CellState] = {s.name: s for s in STATES}
INDEX: dict[str, int] = {s.name: i for i, s in enumerate(STATES)}

# The summarising zoom shows the first state in this order that any aggregated
# descriptor has (most interesting first).
PRIORITY: tuple[str, ...] = ("bad", "cleared", "migration", "swap", "protnone", "pmd", "special", "dirty",
                             "dirtyro", "young", "writable", "valid", "none", "outside")
RANK: dict[str, int] = {name: i for i, name in enumerate(PRIORITY)}
assert set(PRIORITY) == set(BY_NAME)


# Marks that are not states: drawn over / around cells. (name, TCSS, legend text, glyph)
@dataclass(frozen=True)
class Mark:
    name: str
    css: str
    label: str
    sample: str
    help: str


MARKS: tuple[Mark, ...] = (
    Mark("cont", "background: $primary-muted;", "CONT (upper case)", "[R━R]",
         "entries with PTE_CONT: upper-case glyph, joined by ━, row bracketed [ ] when the whole "
         "row is CONT"),
    Mark("boundary", "color: $foreground 80%;", "folio edge", "│",
         "│ between two cells: a large folio ends / begins there"),
    Mark("changed", "background: $warning-muted; text-style: bold underline;", "changed", "r̲",
         "written by the last step (op, call or event): underlined on a highlighted background"),
    Mark("cursor", "text-style: reverse;", "cursor", "▮", "the selected entry (inspector)"),
    Mark("diff", "background: $error-muted; text-style: bold;", "differs", "≠",
         "comparison screen: the entry differs from the other session"),
    Mark("bp", "color: $text-error; text-style: bold;", "breakpoint", "●",
         "● in the gutter: a block breakpoint"),
    Mark("gutter", "color: $foreground 55%;", "", "", ""),
    Mark("header", "color: $text-accent; text-style: bold;", "", "", ""),
    Mark("tail", "color: $foreground 65%;", "", "", ""),
    Mark("foldable", "color: $text-success; text-style: bold;", "foldable", "◇",
         "◇ after a row: the block passes every fold check but is not folded"),
)
MARK_BY_NAME = {m.name: m for m in MARKS}


def glyph(state: str, cont: bool = False) -> str:
    s = BY_NAME[state]
    return s.cont_glyph if cont else s.glyph


def component_class(prefix: str, name: str) -> str:
    return f"{prefix}--{name}"


def component_classes(prefix: str) -> set[str]:
    return {component_class(prefix, s.name) for s in STATES} | {component_class(prefix, m.name)
                                                                 for m in MARKS}


def tcss(widget: str, prefix: str) -> str:
    """TCSS rules for every state and mark, as component classes of ``widget``."""
    out = []
    for s in STATES:
        out.append(f"{widget} > .{component_class(prefix, s.name)} {{ color: {s.color}; {s.style} }}")
    for m in MARKS:
        out.append(f"{widget} > .{component_class(prefix, m.name)} {{ {m.css} }}")
    return "\n".join(out)


# --- classification ------------------------------------------------------------------------
_VALID_CONT = PTE_VALID | PTE_CONT
_HW_DIRTY_MASK = PTE_WRITE | PTE_RDONLY


def classify(raw: int, layout: Layout) -> str:
    """The state name of one raw descriptor (see the module docstring)."""
    if raw == 0:
        return "none"
    if raw & PTE_VALID:
        if raw & PTE_SPECIAL:
            return "special"
        if (raw & _HW_DIRTY_MASK) == PTE_WRITE:
            return "dirty"
        if raw & PTE_DIRTY:  # software dirty: writable, or write-protected (fork's wrprotect)
            return "dirty" if raw & PTE_WRITE else "dirtyro"
        if raw & PTE_AF:
            return "young"
        if raw & PTE_WRITE:
            return "writable"
        return "valid"
    if layout.pte_present_invalid(raw):
        return "protnone"
    if raw & 3:
        return "bad"
    typ = layout.swp_type(raw)
    if 25 <= typ <= 27:  # migration read / read-exclusive / write (see engine.decode)
        return "migration"
    return "swap"


def is_cont(raw: int, layout: Layout) -> bool:
    """Whether the glyph is drawn upper-case: the CONT bit on a present entry
    (in a swap entry bit 52 belongs to the offset)."""
    return bool(raw & PTE_CONT) and layout.pte_present(raw)


def is_valid_cont(raw: int) -> bool:
    return (raw & _VALID_CONT) == _VALID_CONT


class Classifier:
    """classify() memoised on the attribute bits of valid entries (the pfn
    never changes the state), so a table of 512 entries costs 512 dict hits."""

    __slots__ = ("layout", "attr_mask", "_memo")

    def __init__(self, layout: Layout, addr_mask: int):
        self.layout = layout
        self.attr_mask = ~addr_mask & ((1 << 64) - 1)
        self._memo: dict[int, str] = {}

    def __call__(self, raw: int) -> str:
        key = raw & self.attr_mask if raw & PTE_VALID else raw
        s = self._memo.get(key)
        if s is None:
            s = classify(raw, self.layout)
            if raw & PTE_VALID or len(self._memo) < 4096:
                self._memo[key] = s
        return s
