# SPDX-License-Identifier: GPL-2.0-only
"""The cost panel: totals up to the current step, TLB hit rate, a sparkline
of cycles per op around the current op, and the costs of the last op."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.widget import Widget

from tui.cost_totals import CostModel, hit_rate, sparkline
from tui.eventfmt import fmt_cycles

if TYPE_CHECKING:
    from engine.session import Session


def _pair(a: str, av: str, b: str, bv: str) -> str:
    return f"{a:<8}{av:>6}  {b:<8}{bv:>6}"


def cost_lines(costs: CostModel, session: Session, width: int) -> list[tuple[str, str]]:
    """(text, style name) lines of the panel; style names: title, value, spark, now, dim."""
    k = session.k
    tot = costs.totals(k)

    def g(key: str) -> str:
        return str(int(tot.get(key, 0)))

    h, m = tot.get("tlb_hits", 0), tot.get("tlb_misses", 0)
    rate = f"{100.0 * h / (h + m):.0f}%" if h + m else "n/a"
    out: list[tuple[str, str]] = [(f"Costs to step {k} / {session.n_ops}", "title")]
    out.append((_pair("pte rd", g("pte_reads"), "pte wr", g("pte_writes")), "value"))
    out.append((_pair("convert", g("converts"), "fold/unf", f"{g('folds')}/{g('unfolds')}"), "value"))
    out.append((_pair("flushes", g("flush_tlb_range"), "TLBI", g("tlbi")), "value"))
    out.append((_pair("DSB", g("dsb"), "faults", g("page_faults")), "value"))
    out.append((_pair("cycles", fmt_cycles(tot.get("cycles", 0.0)), "TLB hit", rate), "value"))
    if h + m:
        out.append((f"TLB {hit_rate(tot)}", "dim"))
    w = max(8, width - 2)
    first, values = costs.cycles_window(max(k, 1), w)
    cur = (k - 1) - first if k else None
    spark = sparkline(values, cur)
    out.append((f"cycles/op, ops {first + 1}-{first + len(values)}", "dim"))
    out.append(("".join(c for c, _ in spark), "spark"))
    if k:
        r = session.records[k - 1]
        c = r.counters
        out.append((f"op {k}: {fmt_cycles(r.cycles)}c w{c.get('pte_writes', 0)} r{c.get('pte_reads', 0)} "
                    f"cv{c.get('converts', 0)} tlbi{c.get('tlbi', 0)}", "now"))
    return out


class CostPanel(Widget):
    COMPONENT_CLASSES = {"cost--title", "cost--value", "cost--dim", "cost--spark", "cost--now"}
    DEFAULT_CSS = """
    CostPanel { background: $surface; padding: 0 1; height: 10; }
    CostPanel > .cost--title { color: $text-accent; text-style: bold; }
    CostPanel > .cost--value { color: $foreground; }
    CostPanel > .cost--dim { color: $foreground 60%; }
    CostPanel > .cost--spark { color: $text-warning; }
    CostPanel > .cost--now { color: $text-primary; }
    """

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.costs: CostModel | None = None
        self.session: Session | None = None
        self.lines: list[tuple[str, str]] = []

    def set_session(self, session: Session) -> None:
        self.session = session
        self.costs = CostModel(session)
        self.update_view()

    def update_view(self) -> None:
        if self.session is None or self.costs is None:
            self.lines = []
        else:
            self.lines = cost_lines(self.costs, self.session, max(10, (self.size.width or 40) - 2))
        self.refresh()

    @property
    def text(self) -> str:
        return "\n".join(t for t, _ in self.lines)

    def render(self) -> Text:
        t = Text(no_wrap=True, overflow="ellipsis")
        for i, (line, st) in enumerate(self.lines):
            if i:
                t.append("\n")
            t.append(line, self.get_component_rich_style(f"cost--{st}", partial=True))
        return t

    def on_resize(self) -> None:
        self.update_view()
