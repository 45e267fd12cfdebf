# SPDX-License-Identifier: GPL-2.0-only
"""Fold explainer: is this block folded, and if not, why not?

The reasons are the checks the kernel's fold path makes, in its order --
contpte_try_fold() in pgtable.h (last entry of the block, pfn alignment,
valid, not CONT, not special) then __contpte_try_fold() in contpte.c
(mm_is_user, one folio covers the block, every entry equal to the expected
one modulo access/dirty) -- but every failing check is reported, not just the
first, so a user sees everything standing between the block and a fold.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engine.policy import AnyEntryPolicy, MainlinePolicy, NeverPolicy, ScanPolicy
from engine.pte import (
    PTE_AF,
    PTE_ATTRINDX_MASK,
    PTE_CONT,
    PTE_DIRTY,
    PTE_GP,
    PTE_NG,
    PTE_PO_IDX_MASK,
    PTE_PXN,
    PTE_RDONLY,
    PTE_SHARED,
    PTE_SPECIAL,
    PTE_UFFD_WP,
    PTE_USER,
    PTE_UXN,
    PTE_VALID,
    PTE_WRITE,
)

if TYPE_CHECKING:
    from engine.arch import Arch
    from engine.pte import Layout
    from engine.state.mmstruct import MMStruct

_BIT_NAMES = (
    (PTE_VALID, "VALID"), (PTE_USER, "USER"), (PTE_RDONLY, "RDONLY"), (PTE_SHARED, "SH"),
    (PTE_NG, "NG"), (PTE_ATTRINDX_MASK, "ATTRINDX"), (PTE_GP, "GP"), (PTE_WRITE, "WRITE"),
    (PTE_CONT, "CONT"), (PTE_PXN, "PXN"), (PTE_UXN, "UXN"), (PTE_SPECIAL, "SPECIAL"),
    (PTE_UFFD_WP, "UFFD_WP/bit58"), (PTE_PO_IDX_MASK, "PO_IDX"), (1 << 57, "bit57"), (1 << 63, "bit63"),
)


def bit_names(mask: int) -> list[str]:
    names = [name for bit, name in _BIT_NAMES if mask & bit]
    rest = mask
    for bit, _ in _BIT_NAMES:
        rest &= ~bit
    if rest:
        names.append(f"{rest:#x}")
    return names


@dataclass(frozen=True)
class Reason:
    code: str  # stable identifier: "none", "invalid", "special", "pfn-misaligned", "folio", "prot", ...
    message: str
    index: int | None = None  # entry index within the block, when about one entry


@dataclass
class BlockExplanation:
    start: int
    nr: int
    folded: bool
    foldable: bool  # every check of the fold path passes
    reasons: list[Reason] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    entries: list[int] = field(default_factory=list)  # the block's descriptors, as explained

    def sentences(self) -> list[str]:
        """The reasons, one sentence per kind: "entries 0–14 are none" rather than
        fifteen lines, "entries 0–14 writable, entry 15 read-only" for a prot split."""
        return summarise(self)

    def summary(self) -> str:
        if self.folded:
            return f"block {self.start:#x} is folded (all {self.nr} entries valid + CONT)"
        if self.foldable:
            return f"block {self.start:#x} is not folded but passes every fold check"
        return f"block {self.start:#x} is not folded: " + "; ".join(r.message for r in self.reasons[:3]) + (
            f" (+{len(self.reasons) - 3} more)" if len(self.reasons) > 3 else "")

    def as_dict(self) -> dict[str, Any]:
        return {"start": self.start, "nr": self.nr, "folded": self.folded, "foldable": self.foldable,
                "reasons": [{"code": r.code, "message": r.message, "index": r.index} for r in self.reasons],
                "notes": list(self.notes)}


def _norm(pte: int) -> int:
    return (pte & ~(PTE_AF | PTE_DIRTY)) | PTE_RDONLY


def explain_block(arch: Arch, mm: MMStruct, addr: int, layout: Layout | None = None,
                  entries: list[int] | None = None) -> BlockExplanation:
    """``entries``: the block's descriptors when the caller has them (as shown mid-op, or
    read without the page table's writable path); default: read from mm's page table."""
    n = arch.cont_ptes
    ps = arch.page_size
    start = addr & arch.cont_mask
    if entries is None:
        t = mm.pt.table(start, create=False)
        entries = [0] * n if t is None else list(t[(start >> arch.page_shift) % arch.g.ptrs_per_pte:][:n])
    layout = layout or arch.layout
    valid_cont = [(e & (PTE_VALID | PTE_CONT)) == (PTE_VALID | PTE_CONT) for e in entries]
    ex = BlockExplanation(start, n, folded=all(valid_cont), foldable=False, entries=list(entries))
    if ex.folded:
        return ex
    if any(valid_cont):
        ex.reasons.append(Reason("inconsistent", f"only {sum(valid_cont)} of {n} entries are valid+CONT: "
                                 "a misprogrammed block (invariant violation)"))
    if not arch.profile.contpte:
        ex.reasons.append(Reason("no-contpte", f"kernel profile {arch.profile.name} has no contpte support"))
    if not mm.is_user:
        ex.reasons.append(Reason("kernel-mm", "kernel mm: mm_is_user() is false, contpte never folds it"))

    for i, e in enumerate(entries):
        if e == 0:
            ex.reasons.append(Reason("none", f"entry {i} is none", i))
        elif not e & PTE_VALID:
            what = "PROT_NONE" if layout.pte_protnone(e) else (
                "present but invalid" if layout.pte_present(e) else "a swap/migration entry")
            ex.reasons.append(Reason("invalid", f"entry {i} is {what}", i))
    last = entries[n - 1]
    mask = n - 1
    if last & PTE_VALID:
        if last & PTE_SPECIAL:
            ex.reasons.append(Reason("special", f"entry {n - 1} is special (no folio: never folded)", n - 1))
        pfn_last = arch.pte_pfn(last)
        if (pfn_last & mask) != mask:
            ex.reasons.append(Reason(
                "pfn-misaligned",
                f"entry {n - 1} maps pfn {pfn_last:#x}, not the last of a {n}-page aligned group: "
                "the block's VA and PA are not congruent modulo the block size", n - 1))
        else:
            head, nr = arch.folios.folio_of(pfn_last)
            k = pfn_last - head
            folio_start = start + (n - 1) * ps - k * ps
            folio_end = folio_start + nr * ps
            if folio_start > start or folio_end < start + arch.cont_size:
                ex.reasons.append(Reason(
                    "folio", f"the folio of entry {n - 1} (pfn {head:#x}, {nr} page{'s' if nr > 1 else ''}) "
                    f"does not cover the whole block", n - 1))
        expected = _norm(last) - (n - 1) * ps
        for i, e in enumerate(entries[:-1]):
            if not e & PTE_VALID:
                continue
            got = _norm(e)
            want = expected + i * ps
            if got == want:
                continue
            if arch.pte_pfn(got) != arch.pte_pfn(want):
                ex.reasons.append(Reason("pfn-gap", f"entry {i} maps pfn {arch.pte_pfn(e):#x}, "
                                         f"expected {arch.pte_pfn(want):#x}", i))
            diff = arch.pte_pgprot(got ^ want)
            if diff:
                ex.reasons.append(Reason("prot", f"entry {i} differs from entry {n - 1} in "
                                         + ", ".join(bit_names(diff)), i))
    if not ex.reasons:
        ex.foldable = True
        ex.notes.append(policy_note(arch, mm, start, entries))
    return ex


def policy_note(arch: Arch, mm: MMStruct, start: int, entries: list[int]) -> str:
    """Why a block that passes every fold check is not folded, from the fold
    policy in force (``arch.fold_policy``; None is the kernel's own heuristic)."""
    n = len(entries)
    policy = arch.fold_policy
    if policy is None or type(policy) is MainlinePolicy:
        if not arch.profile.auto_fold:
            return (f"kernel profile {arch.profile.name} never folds automatically "
                    "(no contpte_try_fold before seed-fold)")
        return (f"every check passes, but the kernel only tries to fold when entry {n - 1} is "
                "written by set_ptes(nr == 1); no such write has happened since the block "
                "became foldable")
    name = getattr(policy, "name", type(policy).__name__)
    if type(policy) is ScanPolicy:
        return (f"every check passes; policy {name} tries when entry {n - 1} is written by "
                f"set_ptes(nr == 1) and scans every {policy.scan_interval} ops: the next scan folds it")
    if type(policy) is NeverPolicy:
        return (f"policy {name}: set_ptes(nr == 1) never tries to fold; only a set_ptes(nr > 1) "
                "of the whole block paints CONT")
    if type(policy) is AnyEntryPolicy:
        return (f"every check passes; policy {name} tries to fold after any set_ptes(nr == 1) of a "
                "valid entry, and none has written this block since it became foldable")
    # a user policy: ask it about each entry as it stands
    ps = arch.page_size
    yes: list[int] = []
    try:
        for i, e in enumerate(entries):
            if policy.should_try_fold(arch, mm, start + i * ps, e):
                yes.append(i)
    except Exception as err:  # noqa: BLE001 - a user's policy; say what it did
        return f"every check passes; policy {name} raised when asked about this block: {err}"
    scan = getattr(policy, "scan_interval", 0) or 0
    tail = f"; its scan() runs every {scan} ops" if scan else ""
    if yes:
        return (f"every check passes; policy {name} would try to fold when {_entries_text(yes)} "
                f"{'is' if len(yes) == 1 else 'are'} written by set_ptes(nr == 1) with the value "
                f"{'it has' if len(yes) == 1 else 'they have'} now, and no such write has happened "
                f"since the block became foldable{tail}")
    return (f"every check passes, but policy {name} answers no for every entry of this block "
            f"as it stands{tail}")


def summarise(ex: BlockExplanation) -> list[str]:
    """See BlockExplanation.sentences."""
    groups: dict[tuple[str, str], list[int]] = {}
    order: list[tuple[str, str]] = []
    out_single: list[tuple[int, str]] = []
    for pos, r in enumerate(ex.reasons):
        if r.index is None or r.code in ("special", "pfn-misaligned", "folio"):
            out_single.append((pos, r.message))
            continue
        if r.code == "prot":
            key = ("prot", r.message.split(" in ", 1)[1])
        elif r.code == "pfn-gap":
            key = ("pfn-gap", "")
        else:
            key = (r.code, r.message.split(f"entry {r.index} ", 1)[-1])
        if key not in groups:
            groups[key] = []
            order.append(key)
            out_single.append((pos, ""))  # placeholder keeps the kernel's order
        groups[key].append(r.index)
    last = ex.nr - 1
    texts: list[str] = []
    it = iter(order)
    for _, msg in out_single:
        if msg:
            texts.append(msg)
            continue
        code, what = next(it)
        idx = groups[(code, what)]
        who = _entries_text(idx)
        plural = len(idx) > 1
        if code == "prot":
            bits = set(what.split(", "))
            if bits <= {"RDONLY", "WRITE"} and ex.entries:
                def perm(v: int) -> str:  # pte_write(): the DBM/WRITE bit (clean entries are RDONLY)
                    return "writable" if v & PTE_WRITE else "read-only"
                texts.append(f"{who} {perm(ex.entries[idx[0]])}, entry {last} {perm(ex.entries[last])}")
            else:
                texts.append(f"{who} differ{'' if plural else 's'} from entry {last} in {what}")
        elif code == "pfn-gap":
            texts.append(f"{who} map{'' if plural else 's'} pfns out of sequence with entry {last}")
        else:
            verb = "are" if plural else "is"
            texts.append(f"{who} {what.replace('is ', verb + ' ', 1) if what.startswith('is ') else what}")
    return texts


def _entries_text(idx: list[int]) -> str:
    """'entry 3', 'entries 0-14', 'entries 0, 2, 5-7'."""
    runs: list[tuple[int, int]] = []
    for i in idx:
        if runs and runs[-1][1] == i - 1:
            runs[-1] = (runs[-1][0], i)
        else:
            runs.append((i, i))
    parts = [f"{a}" if a == b else f"{a}–{b}" for a, b in runs]
    return ("entry " if len(idx) == 1 else "entries ") + ", ".join(parts)
