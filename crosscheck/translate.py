# SPDX-License-Identifier: GPL-2.0-only
"""Scenario → guest program: the same syscalls and accesses, in the same order.

:func:`plan` runs the scenario in the engine once (record mode) and, op by
op, writes down what the guest must do: the engine resolves every ``NAME
+OFF LEN`` to addresses, picks every mapping's address, and names every
process, so the guest program repeats exactly that -- ``mmap`` with
``MAP_FIXED_NOREPLACE`` at the engine's address, one access per page for
``touch``, the same ``madvise``/``mprotect`` ranges. What the engine saw
after each op (:mod:`crosscheck.observe`) is kept beside it for the
comparison.

Addresses in the top half of the 48-bit user space (where the engine, like
the kernel, places mappings top-down) are moved down by :data:`SHIFT` in the
guest, so they can never collide with the guest program's own stack and
vDSO; the shift is a multiple of 1 GiB, so every alignment the kernel looks
at (block, folio, PMD) is kept. The comparison moves them back.

Some ops have no user-space form; each is either rewritten to the closest
real equivalent *on both sides* (the engine runs the rewritten scenario too,
so the comparison stays like for like, and the report lists each rewrite) or
refused with the op's line and why (:class:`Untranslatable`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.errors import ScenarioError
from engine.mm.thp import size_name
from engine.ops import Op
from engine.scenario_machine import Machine, MachineConfig

SHIFT = 1 << 44  # 16 TiB
TOP_HALF = 1 << 47
GUEST_FILE_DIR = "/mnt/ptlab"
#: the block device under GUEST_FILE_DIR when it is XFS (crosscheck/guest_script.py)
GUEST_FILE_DEVICE = "vda"

PROT = {"rw": "PROT_READ|PROT_WRITE", "r": "PROT_READ", "none": "PROT_NONE",
        "rx": "PROT_READ|PROT_EXEC", "rwx": "PROT_READ|PROT_WRITE|PROT_EXEC", "x": "PROT_EXEC"}
MADV = {"dontneed": "MADV_DONTNEED", "free": "MADV_FREE", "cold": "MADV_COLD",
        "pageout": "MADV_PAGEOUT", "hugepage": "MADV_HUGEPAGE", "nohugepage": "MADV_NOHUGEPAGE"}


class Untranslatable(ValueError):
    """An op (or directive) the guest cannot express; ``line`` is its scenario line."""

    def __init__(self, message: str, line: int = 0):
        super().__init__(message)
        self.line = line


def guest_addr(addr: int) -> int:
    return addr - SHIFT if addr >= TOP_HALF else addr


def engine_addr(addr: int) -> int:
    return addr + SHIFT if TOP_HALF - SHIFT <= addr < (1 << 48) - SHIFT else addr


@dataclass
class GuestOp:
    """One scenario op as the guest runs it."""

    index: int
    line: int
    text: str
    proc: int  # the scenario process (index) that runs it
    c_body: str  # C statements that return 0 or an errno
    fork_child: int = -1
    exit_proc: int = -1


@dataclass
class Plan:
    """Everything the guest program of one scenario needs, and the engine's run of it."""

    name: str
    granule: int
    ops: list[GuestOp]
    procs: list[str]  # process names by index (p0 first)
    parents: list[int]
    dumps: list[list[tuple[int, int, int]]]  # after op k: (proc, start, end) in guest addresses
    knobs: list[tuple[str, str]]  # the scenario's sysfs/debugfs writes, in order
    defaults: list[tuple[str, str]]  # the engine's defaults for every knob the scenario may touch
    rewrites: list[str] = field(default_factory=list)  # "line N: reclaim heap -> madvise pageout"
    config: dict[str, Any] = field(default_factory=dict)  # the engine's MachineConfig summary
    needs_numa: bool = False
    needs_swap: bool = False
    files: list[str] = field(default_factory=list)

    @property
    def ops_text(self) -> list[str]:
        return [o.text for o in self.ops]


def _thp_knob(size: str) -> str:
    kb = _size_bytes(size) >> 10
    return f"/sys/kernel/mm/transparent_hugepage/hugepages-{kb}kB/enabled"


def _size_bytes(text: str) -> int:
    units = {"K": 10, "M": 20, "G": 30}
    t = text.strip().upper()
    if t and t[-1] in units:
        return int(t[:-1]) << units[t[-1]]
    return int(t, 0)


def rewrite_ops(ops: list[Op]) -> tuple[list[Op], list[str]]:
    """The scenario's ops with the guest-inexpressible ones rewritten to their
    closest real equivalent, or Untranslatable. Applied to both sides."""
    out: list[Op] = []
    notes: list[str] = []
    for op in ops:
        a = op.args
        where = f"line {op.line}" if op.line else f"op {len(out)}"
        if op.verb == "reclaim":
            if a.get("name") is None:
                raise Untranslatable("reclaim of every process has no user-space equivalent in the guest "
                                     "(use 'reclaim NAME', which runs as MADV_PAGEOUT)", op.line)
            new = Op("madvise", {"name": a["name"], "off": None, "len": None, "advice": "pageout"},
                     op.line, op.text)
            notes.append(f"{where}: '{op.text.strip() or 'reclaim'}' runs as madvise {a['name']} pageout "
                         "(MADV_PAGEOUT, the closest real equivalent) on both sides")
            out.append(new)
            continue
        if op.verb == "numa":
            raise Untranslatable("NUMA hinting scans are started by the scheduler's task_numa_work(); "
                                 "no syscall starts one, so the guest cannot run 'numa'", op.line)
        if op.verb == "gup":
            raise Untranslatable("'gup' (GUP-fast from another thread, or a racing unfold) has no "
                                 "deterministic user-space form", op.line)
        if op.verb == "touch" and a.get("via", "cpu") != "cpu":
            raise Untranslatable("touch via the SMMU: the guest has no device doing DMA", op.line)
        out.append(op)
    return out, notes


def _check_header(header: dict[str, Any]) -> None:
    pol = header.get("policy", "mainline")
    if pol not in (None, "mainline"):
        raise Untranslatable(f"fold policy {pol!r}: a Debian kernel folds with the mainline heuristic "
                             "only (use --kernel-image with --policy for a kernel of your own)")
    for key in ("aged",):
        if header.get(key):
            raise Untranslatable(f"'{key}' has no guest equivalent")


def plan(scenario: Any, kernel: str, cpu: str, granule: str | None = None, *,
         policy_ok: bool = False, collect: Any = None) -> Plan:
    """Run ``scenario`` in the engine (kernel profile, CPU profile, granule)
    and translate it op by op. ``collect(k, machine, events)`` is called after
    each op with that op's events (crosscheck.observe uses it)."""
    header = dict(scenario.header)
    if not policy_ok:
        _check_header(header)
    ops, notes = rewrite_ops(list(scenario.ops))
    overrides: dict[str, Any] = {"kernel": kernel, "cpu": cpu, "record": True, "check": "end"}
    if granule:
        overrides["granule"] = granule
    try:
        cfg: MachineConfig = scenario.config(**overrides)
        m = Machine(cfg)
    except (ScenarioError, TypeError, ValueError) as e:
        raise Untranslatable(f"the scenario does not run with these settings: {e}") from None
    g = m.g
    thp = m.kernel.thp
    defaults = [("/sys/kernel/mm/transparent_hugepage/enabled", thp.top)]
    defaults += [(_thp_knob(s), thp.per_order[thp.order_of_size(s)]) for s in thp.sizes()]
    knobs: list[tuple[str, str]] = []
    if cfg.thp != "madvise":
        knobs.append(("/sys/kernel/mm/transparent_hugepage/enabled", cfg.thp))
    for size, setting in cfg.mthp.items():
        knobs.append((_thp_knob(size_name(_size_bytes(size))), setting))
    defaults.append(("/sys/kernel/debug/fault_around_bytes", "65536"))
    if cfg.fault_around != 65536:
        knobs.append(("/sys/kernel/debug/fault_around_bytes", str(cfg.fault_around)))
    procs = ["p0"]
    parents = [-1]
    gops: list[GuestOp] = []
    dumps: list[list[tuple[int, int, int]]] = []
    node: dict[tuple[int, int], int] = {}  # (proc, page va) -> NUMA node, for migrate
    files: list[str] = []
    needs_numa = needs_swap = False
    for k, op in enumerate(ops):
        try:
            cur = m.current
            me = procs.index(cur.name) if cur is not None and cur.name in procs else 0
            body, fork_child, exit_proc = _translate(m, op, procs, parents, me, node, files)
        except ScenarioError as e:
            raise Untranslatable(str(e), op.line) from None
        if op.verb == "migrate":
            needs_numa = True
        if op.verb == "madvise" and op.args.get("advice") == "pageout":
            needs_swap = True
        mark = len(m.log.buf)
        try:
            m.apply(op)
        except ScenarioError as e:
            raise Untranslatable(f"the engine cannot run it: {e}", op.line) from None
        if op.verb == "fork":
            child = m.kernel.procs[-1]
            procs.append(child.name)
            parents.append(me)
            fork_child = len(procs) - 1
        gops.append(GuestOp(k, op.line, op.text.strip() or op.verb, me, body, fork_child, exit_proc))
        dumps.append(_dump_ranges(m, procs))
        if collect is not None:
            collect(k, m, m.log.buf[mark:])
        del m.log.buf[mark:]  # keep memory flat on long scenarios
    if files:
        # The readahead window is the block device's, not the mm's: since v6.17
        # blk_apply_bdi_limits() gives a rotational device without io_opt (QEMU's
        # virtio-blk) twice max_sectors (8 MiB on the 16K build) instead of
        # VM_READAHEAD_PAGES. The guest takes the engine's read_ahead_kb, as it
        # takes its THP settings, so both read ahead through the same window.
        defaults.append((f"/sys/block/{GUEST_FILE_DEVICE}/queue/read_ahead_kb", str(cfg.readahead >> 10)))
    return Plan(scenario.name, g.page_size, gops, procs, parents, dumps, knobs, defaults, notes,
                cfg.summary(), needs_numa, needs_swap, files)


def _dump_ranges(m: Machine, procs: list[str]) -> list[tuple[int, int, int]]:
    out = []
    for p in m.kernel.procs:
        if not p.alive or p.name not in procs:
            continue
        j = procs.index(p.name)
        for v in p.vmas:
            out.append((j, guest_addr(v.start), guest_addr(v.end)))
    return out


def _translate(m: Machine, op: Op, procs: list[str], parents: list[int], me: int,
               node: dict[tuple[int, int], int], files: list[str]) -> tuple[str, int, int]:
    """C statements for op (returning 0 or an errno), the child index of a
    fork, the process index an exit ends."""
    a = op.args
    v = op.verb
    ps = m.g.page_size
    if v == "switch":
        return "return 0;", -1, -1  # the controller sends later ops to that process
    if v == "fork":
        return "return 0;", 0, -1  # the child index is set once the engine has forked
    if v == "exit":
        name = a.get("proc")
        target = m._proc().name if name is None else name
        if target not in procs:
            raise Untranslatable(f"no running process named {target!r}", op.line)
        return "return 0;", -1, procs.index(target)
    if v == "mmap":
        # the engine picks the address: run its validation and area choice on a copy
        size = a["size"]
        at = a.get("at")
        proc = m._proc()
        if at is None:
            at = proc.get_unmapped_area(size, m.g, thp_align=a.get("kind", "anon") == "anon"
                                        and not a.get("shared"))
            if at < 0:
                raise Untranslatable("no room for the mapping", op.line)
        prot = PROT.get(a.get("prot", "rw"))
        if prot is None:
            raise Untranslatable(f"protection {a.get('prot')!r} has no translation", op.line)
        kind = a.get("kind", "anon")
        shared = bool(a.get("shared"))
        flags = "MAP_SHARED" if shared else "MAP_PRIVATE"
        lines = []
        if kind == "file":
            fname = a.get("file") or a["name"]
            path = f"{GUEST_FILE_DIR}/{_c_ident(fname)}"
            if path not in files:
                files.append(path)
            lines.append(f"if ((e = make_file({_c_str(path)}, {size:#x}UL))) return e;")
            lines.append(f"if ((e = do_mmap({guest_addr(at):#x}UL, {size:#x}UL, {prot}, {flags}, "
                         f"{_c_str(path)}))) return e;")
        else:
            lines.append(f"if ((e = do_mmap({guest_addr(at):#x}UL, {size:#x}UL, {prot}, "
                         f"{flags}|MAP_ANONYMOUS, NULL))) return e;")
        if a.get("hugepage"):
            lines.append(f"if (madvise((void *){guest_addr(at):#x}UL, {size:#x}UL, MADV_HUGEPAGE)) "
                         "return errno;")
        lines.append("return 0;")
        return "int e; " + " ".join(lines), -1, -1
    if v == "touch":
        _, start, end = m._region(op)
        write = 1 if a.get("access", "read") == "write" else 0
        return f"return touch({guest_addr(start):#x}UL, {guest_addr(end):#x}UL, {write});", -1, -1
    if v == "munmap":
        _, start, end = m._region(op)
        return f"return sys0(munmap((void *){guest_addr(start):#x}UL, {end - start:#x}UL));", -1, -1
    if v == "mprotect":
        _, start, end = m._region(op, need_len=True)
        prot = PROT.get(a.get("prot", ""))
        if prot is None:
            raise Untranslatable(f"protection {a.get('prot')!r} has no translation", op.line)
        return (f"return sys0(mprotect((void *){guest_addr(start):#x}UL, {end - start:#x}UL, {prot}));",
                -1, -1)
    if v == "madvise":
        _, start, end = m._region(op)
        adv = MADV.get(a.get("advice", ""))
        if adv is None:
            raise Untranslatable(f"madvise {a.get('advice')!r} has no translation", op.line)
        return (f"return sys0(madvise((void *){guest_addr(start):#x}UL, {end - start:#x}UL, {adv}));",
                -1, -1)
    if v == "migrate":
        # move_pages() with one page per folio (the engine's Kernel.migrate_targets):
        # every folio once, to the other NUMA node
        proc, start, end = m._region(op)
        targets = m.kernel.migrate_targets(proc, start, end)
        if not targets:
            return "return 0;", -1, -1
        src = node.get((me, start), 0)
        dst = 1 - src
        for va in range(start, end, ps):
            node[(me, va)] = dst
        addrs = ", ".join(f"{guest_addr(va):#x}UL" for _, va in targets)
        return (f"static const unsigned long a[] = {{{addrs}}}; "
                f"return do_move_pages(a, {len(targets)}, {dst});", -1, -1)
    if v == "mremap":
        proc, start, end = m._region(op)
        new = a["addr"]
        return (f"return syscall(SYS_mremap, {guest_addr(start):#x}UL, {end - start:#x}UL, "
                f"{end - start:#x}UL, MREMAP_MAYMOVE|MREMAP_FIXED, {guest_addr(new):#x}UL) == "
                f"(long){guest_addr(new):#x}UL ? 0 : errno;", -1, -1)
    if v == "split":
        proc, start, end = m._region(op)
        if a.get("len") is None and a.get("off") is not None:
            end = start + ps
        if a.get("pmd"):
            # A PMD split that keeps the folio: splitting the VMA inside the PMD range
            # (__split_vma -> vma_adjust_trans_huge -> split_huge_pmd_if_needed), with a
            # flag that changes nothing else and is cleared again so the VMAs merge back.
            # Every PMD mapping of the range, as the engine splits them all (the seed's
            # 1 GiB order-9 scenarios split 512).
            stmts = []
            for haddr in range(start & ~(m.g.pmd_size - 1), end, m.g.pmd_size):
                if not proc.mm.pt.get_pmd(haddr) or proc.mm.pt.tables.get(haddr >> m.g.pmd_shift):
                    continue  # no PMD mapping there: nothing to split
                page = guest_addr(haddr + ps)
                stmts.append(f"if (madvise((void *){page:#x}UL, {ps:#x}UL, MADV_DONTFORK)) return errno; "
                             f"if (madvise((void *){page:#x}UL, {ps:#x}UL, MADV_DOFORK)) return errno;")
            return " ".join(stmts) + " return 0;", -1, -1
        order = a.get("order") or 0
        if a.get("order_size") is not None:
            order = (a["order_size"] >> m.g.page_shift).bit_length() - 1
        return f"return do_split({guest_addr(start):#x}UL, {guest_addr(end):#x}UL, {order});", -1, -1
    if v == "collapse":
        _, start, _end = m._region(op)
        haddr = start & ~(m.g.pmd_size - 1)
        # a failure is MADV_COLLAPSE's answer, compared with the engine's errno: negative
        # tells the controller to record it and go on (runtime.c)
        return (f"return -sys0(madvise((void *){guest_addr(haddr):#x}UL, {m.g.pmd_size:#x}UL, "
                "MADV_COLLAPSE));", -1, -1)
    if v == "read":
        fname = a.get("file", "")
        f = m.kernel.pc.by_name(fname)
        if f is None:
            raise Untranslatable(f"no file named {fname!r}", op.line)
        off = a.get("off", 0) or 0
        length = a.get("len")
        if length is None:
            length = f.npages * ps - off
        path = f"{GUEST_FILE_DIR}/{_c_ident(fname)}"
        return f"return do_read({_c_str(path)}, {off:#x}UL, {length:#x}UL);", -1, -1
    raise Untranslatable(f"'{v}' has no translation to the guest", op.line)


def _c_ident(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)[:64] or "f"


def _c_str(s: str) -> str:
    return '"' + "".join(ch if ch.isalnum() or ch in "/-_. " else f"\\x{ord(ch):02x}" for ch in s) + '"'


def c_source(plans: list[Plan]) -> str:
    """One C translation unit: every plan as a ``struct scenario`` and a main
    that runs ``argv[1]``'s. Compiled with the runtime (runtime.c) included."""
    parts = ['#include "runtime.c"', ""]
    for t, p in enumerate(plans):
        pre = f"s{t}"
        n = len(p.ops)
        parts.append(f"/* target {t}: {_c_comment(p.name)} */")
        parts.append(f"static const int {pre}_parent[] = {{{', '.join(map(str, p.parents))}}};")
        op_proc = ", ".join(str(o.proc) for o in p.ops) or "0"
        parts.append(f"static const int {pre}_op_proc[] = {{{op_proc}}};")
        for k, ranges in enumerate(p.dumps):
            rows = ", ".join(f"{{{j}, {s:#x}UL, {e:#x}UL}}" for j, s, e in ranges) or "{0, 0, 0}"
            parts.append(f"static const struct range {pre}_r{k}[] = {{{rows}}};")
        dumps = ", ".join(f"{{{len(r)}, {pre}_r{k}}}" for k, r in enumerate(p.dumps)) or "{0, 0}"
        parts.append(f"static const struct op_ranges {pre}_dump[] = {{{dumps}}};")
        defaults = ", ".join(f"{_c_str(k)}, {_c_str(v)}" for k, v in p.defaults)
        parts.append(f"static const char *const {pre}_defaults[] = {{{defaults}, NULL}};")
        parts.append(f"static void {pre}_setup(void) {{")
        for knob_path, value in p.knobs:
            parts.append(f"\tknob({_c_str(knob_path)}, {_c_str(value)});")
        parts.append("}")
        parts.append(f"static int {pre}_run_op(int k, int self, int *child) {{")
        parts.append("\t(void)self; (void)child;")
        parts.append("\tswitch (k) {")
        for o in p.ops:
            parts.append(f"\tcase {o.index}: {{ /* {_c_comment(o.text)} */ {o.c_body} }}")
        parts.append("\t}\n\treturn EINVAL;\n}")
        forks = " ".join(f"case {o.index}: return {o.fork_child};" for o in p.ops if o.fork_child >= 0)
        exits = " ".join(f"case {o.index}: return {o.exit_proc};" for o in p.ops if o.exit_proc >= 0)
        parts.append(f"static int {pre}_fork_child(int k) {{ switch (k) {{ {forks} }} return -1; }}")
        parts.append(f"static int {pre}_exit_proc(int k) {{ switch (k) {{ {exits} }} return -1; }}")
        parts.append(f"static const struct scenario {pre} = {{ {_c_str(p.name)}, {len(p.procs)}, {n}, "
                     f"{pre}_parent, {pre}_op_proc, {pre}_dump, {pre}_defaults, {pre}_setup, "
                     f"{pre}_run_op, {pre}_fork_child, {pre}_exit_proc }};")
        parts.append("")
    table = ", ".join(f"&s{t}" for t in range(len(plans)))
    parts.append(f"static const struct scenario *const all[] = {{{table}}};")
    parts.append("int main(int argc, char **argv)\n{\n\tint t = argc > 1 ? atoi(argv[1]) : -1;\n"
                 f"\tif (t < 0 || t >= {len(plans)}) {{ dprintf(2, \"usage: prog TARGET\\n\"); return 2; }}\n"
                 "\treturn run_scenario(all[t], t);\n}\n")
    return "\n".join(parts)


def _c_comment(s: str) -> str:
    return s.replace("*/", "* /").replace("\n", " ")[:120]
