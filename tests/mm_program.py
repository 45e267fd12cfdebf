# SPDX-License-Identifier: GPL-2.0-only
"""Random but mostly valid op programs for property tests.

A program is a list of integer tuples (easy for hypothesis to generate and
shrink); ``to_op`` turns one tuple into an Op that makes sense for the
machine's current state (existing mappings, offsets inside them), so most
ops do real work instead of being rejected.
"""

from __future__ import annotations

from engine.ops import Op

VERBS = ("mmap", "touch", "touch", "touch", "touch", "fork", "switch", "exit", "munmap",
         "mprotect", "mprotect", "madvise", "reclaim", "migrate", "numa", "mremap", "split",
         "collapse", "read", "gup")
SIZES = (64 << 10, 128 << 10, 256 << 10, 2 << 20, 4 << 20)
PROTS = ("rw", "rw", "r", "none")
ADVICE = ("dontneed", "free", "cold", "pageout", "hugepage")


def to_op(m, choice: tuple[int, int, int, int]) -> Op | None:
    v, a, b, c = choice
    verb = VERBS[v % len(VERBS)]
    proc = m.current
    ps = m.g.page_size
    if proc is None:
        return None
    regions = sorted(proc.regions)
    if verb == "mmap" or not regions:
        if len(regions) >= 5:
            verb = "touch"
        else:
            name = f"r{a % 7}"
            if name in proc.regions:
                return None
            kind = "file" if b % 4 == 0 else "anon"
            return Op("mmap", {"name": name, "size": SIZES[b % len(SIZES)], "prot": "rw",
                               "kind": kind, "shared": c % 3 == 0, "at": None,
                               "file": f"file{a % 3}" if kind == "file" else None,
                               "hugepage": c % 5 == 0})
    if verb == "fork":
        return Op("fork", {"child": None}) if len(m.kernel.live_procs()) < 4 else None
    if verb == "switch":
        live = m.kernel.live_procs()
        return Op("switch", {"proc": live[a % len(live)].name})
    if verb == "exit":
        live = m.kernel.live_procs()
        return Op("exit", {"proc": None}) if len(live) > 1 and proc.parent else None
    if verb == "reclaim":
        return Op("reclaim", {"name": None if a % 2 else regions[b % len(regions)]})
    name = regions[a % len(regions)]
    start, size = proc.regions[name]
    npages = size // ps
    off = (b % npages) * ps
    # lengths: one page, a block, an unaligned run, or the rest of the mapping
    span = (1, 16, 24, npages)[c % 4]
    length = min(span, npages - off // ps) * ps
    if verb == "read":
        files = [f.name for f in m.kernel.pc.files.values() if not f.shmem]
        return Op("read", {"file": files[a % len(files)], "off": 0, "len": None}) if files else None
    args = {"name": name, "off": off, "len": length}
    if verb == "touch":
        args.update(access="write" if c % 3 else "read", via="cpu")
    elif verb == "mprotect":
        args["prot"] = PROTS[c % len(PROTS)]
    elif verb == "madvise":
        args["advice"] = ADVICE[c % len(ADVICE)]
    elif verb == "mremap":
        return Op("mremap", {"name": name, "addr": ((a % 50) + 1) << 28})
    elif verb == "split":
        args.update(len=None, order=(0, 2, 4)[c % 3], pmd=c % 5 == 0)
    elif verb == "collapse":
        args = {"name": name, "off": off}
    elif verb == "gup":
        args.update(write=False, race=c % 2 == 0)
    return Op(verb, args)
