# SPDX-License-Identifier: GPL-2.0-only
"""Op-by-op comparison of the real kernel's observations with the engine's.

Per op, in this order (the first difference of each kind is reported, at
most ``limit`` per op):

1. the sequence of out-of-line contpte calls (the engine's call events,
   filtered to the functions the guest's kernel has out of line);
2. every ``contpte_convert`` (address, fold or unfold);
3. the page faults in the scenario's mappings;
4. after the op, every present PTE (the ``ptep_get()`` value), bit for bit
   except the output address, and every page's place in its folio / every
   swap entry (physical addresses as structure: same folio offsets and
   sizes, same "same folio as the previous page" relation, same contiguity
   of swap offsets).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from crosscheck.observe import NO_ADDR, OpObservation, PageInfo
from engine.pte import BIT_NAMES_PRESENT


@dataclass
class Divergence:
    op: int
    line: int
    text: str
    what: str  # "calls", "converts", "faults", "pte", "page", "error"
    addr: int | None
    message: str
    kernel: Any = None
    engine: Any = None

    def as_dict(self) -> dict[str, Any]:
        return {"op": self.op, "line": self.line, "text": self.text, "what": self.what,
                "addr": None if self.addr is None else f"{self.addr:#x}", "message": self.message,
                "kernel": _plain(self.kernel), "engine": _plain(self.engine)}


def _plain(v: Any) -> Any:
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:#018x}"
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, PageInfo):
        return {"kind": v.kind, "offset": v.offset, "nr": v.nr, "zero": v.zero}
    return v


@dataclass
class Comparison:
    divergences: list[Divergence] = field(default_factory=list)
    ops_compared: int = 0
    ptes_compared: int = 0
    calls_compared: int = 0

    @property
    def agrees(self) -> bool:
        return not self.divergences


def bit_names(diff: int) -> str:
    names = [name for bit, name in BIT_NAMES_PRESENT if diff >> bit & 1]
    known = 0
    for bit, _ in BIT_NAMES_PRESENT:
        known |= 1 << bit
    rest = diff & ~known
    if rest:
        names.append(f"other bits {rest:#x}")
    return ", ".join(names)


def oa_mask(page_shift: int, lpa2: bool = False) -> int:
    """The output-address bits of a page descriptor (OA[47:page_shift]); for
    the 64K granule's 52-bit PAs, bits 15:12 hold OA[51:48]; with FEAT_LPA2
    enabled (4K and 16K), bits 9:8 hold OA[51:50] instead of the
    shareability field (arch/arm64/include/asm/pgtable-hwdef.h,
    PTE_ADDR_HIGH; PTE_MAYBE_SHARED is 0 when lpa2_is_enabled())."""
    m = ((1 << 48) - 1) & ~((1 << page_shift) - 1)
    if page_shift == 16:
        m |= 0xF << 12
    elif lpa2:
        m |= 0x3 << 8
    return m


def _fmt_call(c: tuple[str, int, int | None], procs: list[str]) -> str:
    name, j, addr = c
    who = procs[j] if 0 <= j < len(procs) else f"#{j}"
    return f"{name}({who}{'' if addr is None else f', {addr:#x}'})"


def compare_op(k: int, line: int, text: str, kern: OpObservation, eng: OpObservation,
               functions: set[str], procs: list[str], page_shift: int, limit: int = 5,
               lpa2: bool = False) -> list[Divergence]:
    out: list[Divergence] = []

    def add(what: str, addr: int | None, msg: str, kv: Any = None, ev: Any = None) -> None:
        if len(out) < limit:
            out.append(Divergence(k, line, text, what, addr, msg, kv, ev))

    if kern.error != eng.error:  # the same errno on both sides agrees
        add("error", None, f"the op failed: kernel {kern.error or 'ok'}, engine {eng.error or 'ok'}",
            kern.error, eng.error)
        return out
    ecalls = [c for c in eng.calls if c[0] in functions]
    kcalls = kern.calls
    # contpte_ptep_get[_lockless]() take only a ptep: the guest knows the task that
    # called them, not whose page table the entry is in (an rmap walk reads another
    # process's entries), so they are compared by name alone
    kkeys = [(c[0], None, None) if c[0] in NO_ADDR else c for c in kcalls]
    ekeys = [(c[0], None, None) if c[0] in NO_ADDR else c for c in ecalls]
    if kkeys != ekeys:
        i = next((i for i, (a, b) in enumerate(zip(kkeys, ekeys, strict=False)) if a != b),
                 min(len(kkeys), len(ekeys)))
        kc = _fmt_call(kcalls[i], procs) if i < len(kcalls) else "(no more calls)"
        ec = _fmt_call(ecalls[i], procs) if i < len(ecalls) else "(no more calls)"
        addr = (kcalls[i][2] if i < len(kcalls) else ecalls[i][2])
        add("calls", addr, f"contpte call {i + 1} of {len(kcalls)} (kernel) / {len(ecalls)} (engine): "
            f"kernel {kc}, engine {ec}", [_fmt_call(c, procs) for c in kcalls[max(0, i - 2):i + 3]],
            [_fmt_call(c, procs) for c in ecalls[max(0, i - 2):i + 3]])
    def first_difference(what: str, label: str, plural: str, ks: list, es: list, fmt: Any) -> None:
        """The first differing element of two event lists (converts, faults)."""
        if ks == es:
            return
        i = next((i for i, (a, b) in enumerate(zip(ks, es, strict=False)) if a != b), min(len(ks), len(es)))
        kx = ks[i] if i < len(ks) else None
        ex = es[i] if i < len(es) else None
        first = kx or ex  # (the lists differ at i: one of them has an entry there)
        assert first is not None
        add(what, first[1], f"{label} {i + 1}: kernel {fmt(kx)}, engine {fmt(ex)} "
            f"({len(ks)} vs {len(es)} {plural})")

    first_difference("converts", "contpte_convert", "converts", kern.converts, eng.converts,
                     lambda c: "none" if c is None else f"{'fold' if c[2] else 'unfold'} at {c[1]:#x}")
    first_difference("faults", "page fault", "faults", kern.faults, eng.faults,
                     lambda f: "none" if f is None else f"{'write' if f[2] else 'read'} at {f[1]:#x}")
    mask = ~oa_mask(page_shift, lpa2) & ((1 << 64) - 1)
    for key in sorted(set(kern.ptes) | set(eng.ptes)):
        kv, ev = kern.ptes.get(key), eng.ptes.get(key)
        j, va = key
        if kv is None or ev is None:
            add("pte", va, f"{procs[j]} {va:#x}: present in the {'engine' if kv is None else 'kernel'} only",
                kv, ev)
            continue
        if (kv ^ ev) & mask:
            add("pte", va, f"{procs[j]} {va:#x}: descriptor bits differ: {bit_names((kv ^ ev) & mask)}",
                kv, ev)
    prev: dict[int, tuple[PageInfo | None, PageInfo | None]] = {}
    for key in sorted(set(kern.pages) | set(eng.pages)):
        j, va = key
        kp, ep = kern.pages.get(key), eng.pages.get(key)
        if kp is None or ep is None or kp.kind != ep.kind:
            add("page", va, f"{procs[j]} {va:#x}: kernel {_page(kp)}, engine {_page(ep)}", kp, ep)
            prev[j] = (kp, ep)
            continue
        if kp.kind == "P" and (kp.offset, kp.nr, kp.zero) != (ep.offset, ep.nr, ep.zero):
            add("page", va, f"{procs[j]} {va:#x}: kernel {_page(kp)}, engine {_page(ep)}", kp, ep)
        pk, pe = prev.get(j, (None, None))
        if pk is not None and pe is not None and pk.kind == kp.kind and pe.kind == ep.kind:
            if kp.kind == "P" and not kp.zero:
                same_k, same_e = pk.head == kp.head, pe.head == ep.head
                if same_k != same_e:
                    add("page", va, f"{procs[j]} {va:#x}: the previous page is in the same folio in the "
                        f"{'kernel' if same_k else 'engine'} only", kp, ep)
            elif kp.kind == "S":
                run_k, run_e = kp.offset == pk.offset + 1, ep.offset == pe.offset + 1
                if run_k != run_e:
                    add("page", va, f"{procs[j]} {va:#x}: swap offset follows the previous page's in the "
                        f"{'kernel' if run_k else 'engine'} only", kp, ep)
        prev[j] = (kp, ep)
    return out


def _page(p: PageInfo | None) -> str:
    if p is None:
        return "no page"
    if p.kind == "S":
        return "a swap entry"
    if p.zero:
        return "the zero page"
    return f"page {p.offset} of a {p.nr}-page folio"


def compare_runs(kernel_ops: list[OpObservation], engine_ops: list[OpObservation],
                 texts: list[tuple[int, str]],
                 functions: set[str], procs: list[str], page_shift: int, limit: int = 5,
                 lpa2: bool = False) -> Comparison:
    c = Comparison()
    for k, (kern, eng) in enumerate(zip(kernel_ops, engine_ops, strict=False)):
        line, text = texts[k]
        c.divergences += compare_op(k, line, text, kern, eng, functions, procs, page_shift, limit, lpa2)
        c.ops_compared += 1
        c.ptes_compared += len(eng.ptes)
        c.calls_compared += len(kern.calls)
    return c
