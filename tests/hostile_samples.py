# SPDX-License-Identifier: GPL-2.0-only
"""Crafted hostile snapshots with valid CRCs, for the hostile-input suite.

Not a test module: tests/test_hostile_inputs.py and scripts/fuzz.py import it.

A crafted file starts from a real saved run (the demo, with a checkpoint
every ``CHECKPOINT_OPS`` ops), taken apart into its header, op records and
checkpoints as plain data, changed by one of the ``CASES`` below, and written
back with the normal writer -- so every record's CRC is right and only the
reader's and the session layer's own checks can catch the lie.
"""

from __future__ import annotations

import copy
import math
import sys
from array import array
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from snapshots import SnapshotHeader, open_snapshot  # noqa: E402
from snapshots.writer import save_snapshot  # noqa: E402

CHECKPOINT_OPS = 10
CREATED = "2026-01-01T00:00:00Z"

Parts = tuple[SnapshotHeader, list[list[Any]], dict[int, Any]]


def base_file(path: str | Path, target: str = "demo", checkpoint_ops: int = CHECKPOINT_OPS) -> Path:
    """A real run of ``target`` saved with a checkpoint every ``checkpoint_ops`` ops."""
    from engine.checkpoints import SAVED_SPACING
    from snapshots.sessions import save_session
    from tui.targets import scenario_session

    s = scenario_session(target)
    s.checkpoint_ops = checkpoint_ops // SAVED_SPACING  # a file keeps every SAVED_SPACING-th one
    s.run()
    save_session(s, str(path), created=CREATED)
    return Path(path)


def read_parts(path: str | Path) -> Parts:
    with open_snapshot(str(path)) as snap:
        ops = [[dict(r.op), dict(r.counters), r.digest] for r in snap.ops.iter_range(0, snap.op_count)]
        cps = {c: snap.checkpoints[c] for c in snap.checkpoint_numbers}
        return snap.header, ops, cps


def write_parts(path: str | Path, parts: Parts) -> Path:
    header, ops, cps = parts
    save_snapshot(str(path), header, [tuple(o) for o in ops], cps)
    return Path(path)


def forge_pte(state: dict[str, Any]) -> tuple[str, int, int, int]:
    """Give one present PTE of the first process with tables another pfn.
    Returns (process, table key, old value, new value)."""
    for proc in state["procs"]:
        for entry in proc["tables"]:
            key, blob = entry
            a = array("Q", blob)
            for i, v in enumerate(a):
                if v & 1:
                    new = v ^ (1 << 20)  # another pfn (bit 20 of the address: pfn bit 8)
                    a[i] = new
                    entry[1] = a.tobytes()
                    return proc["name"], key, v, new
    raise AssertionError("no present PTE to forge")


def _with_header(h: SnapshotHeader, **kw: Any) -> SnapshotHeader:
    return replace(h, **kw)


def _set_extra_cfg(h: SnapshotHeader, **kw: Any) -> SnapshotHeader:
    extra = copy.deepcopy(h.extra)
    extra["config"].update(kw)
    return replace(h, extra=extra)


def _op(i: int, fn: Callable[[list[Any]], None]) -> Callable[[Parts], Parts]:
    def mutate(parts: Parts) -> Parts:
        h, ops, cps = parts
        fn(ops[i])
        return h, ops, cps
    return mutate


def _hdr(fn: Callable[[SnapshotHeader], SnapshotHeader]) -> Callable[[Parts], Parts]:
    def mutate(parts: Parts) -> Parts:
        h, ops, cps = parts
        return fn(h), ops, cps
    return mutate


def _forged_checkpoint(parts: Parts) -> Parts:
    h, ops, cps = parts
    forge_pte(cps[20])
    return h, ops, cps


def _amplified(parts: Parts) -> Parts:
    """One 4 KiB page-table blob referenced by 300,000 tables of one checkpoint
    (stored once: a small file that expands to 1.2 GB)."""
    h, ops, cps = parts
    st = cps[10]
    proc = next(p for p in st["procs"] if p["tables"])
    blob = proc["tables"][0][1]
    proc["tables"] = [[k, blob] for k in range(300_000)]
    return h, ops, cps


def _set(key: str, value: Any) -> Callable[[list[Any]], None]:
    def f(rec: list[Any]) -> None:
        rec[0][key] = value
    return f


def _counter(name: str, value: Any) -> Callable[[list[Any]], None]:
    def f(rec: list[Any]) -> None:
        rec[1][name] = value
    return f


def _digest(value: Any) -> Callable[[list[Any]], None]:
    def f(rec: list[Any]) -> None:
        rec[2] = value
    return f


ESCAPES = "\x1b[2J\x1b[31mred\x1b]0;pwned title\x07\nsecond line [bold]markup[/bold]"

# name -> (mutation, what a reader must answer: "refused" (one line, exit 2 on open),
#          "fails-verify" (replay --verify exit 1), "escaped" (opens; nothing raw printed),
#          "warned" (opens; says it re-executes))
CASES: dict[str, tuple[Callable[[Parts], Parts], str]] = {
    "cpu-path-etc-passwd": (_hdr(lambda h: _set_extra_cfg(_with_header(h, cpu="/etc/passwd"),
                                                         cpu="/etc/passwd")), "refused"),
    "cpu-path-proc-kmsg": (_hdr(lambda h: _set_extra_cfg(_with_header(h, cpu="/proc/kmsg"),
                                                        cpu="/proc/kmsg")), "refused"),
    "cpu-path-toml": (_hdr(lambda h: _set_extra_cfg(_with_header(h, cpu="/tmp/elsewhere.toml"),
                                                   cpu="/tmp/elsewhere.toml")), "refused"),
    "header-config-disagree": (_hdr(lambda h: _with_header(h, kernel="v6.9", granule="16K", cpu="apple-m2")),
                               "refused"),
    "config-not-a-map": (_hdr(lambda h: replace(h, extra={**h.extra, "config": [1, 2]})), "refused"),
    "embedded-cpu-bad": (_hdr(lambda h: _set_extra_cfg(h, cpu={"name": "neoverse-n1",
                                                               "weights": {"dsb_ish": math.inf}})),
                         "refused"),
    "op-args-list": (_op(3, _set("args", [1, 2, 3])), "refused-lazy"),
    "op-line-string": (_op(3, _set("line", "12")), "refused-lazy"),
    "op-verb-escape": (_op(3, _set("verb", "\x1b[2J")), "refused-lazy"),
    "digest-hex-string": (_op(3, _digest("00" * 16)), "refused-lazy"),
    "counter-nan": (_op(3, _counter("pte_writes", math.nan)), "refused-lazy"),
    "counter-inf": (_op(3, _counter("pte_writes", math.inf)), "refused-lazy"),
    "counter-negative": (_op(3, _counter("pte_writes", -5)), "refused-lazy"),
    "counter-huge": (_op(3, _counter("pte_writes", 1 << 63)), "refused-lazy"),
    "scenario-name-escapes": (_hdr(lambda h: _with_header(h, scenario_name=ESCAPES)), "escaped"),
    "op-text-escapes": (_op(3, _set("text", ESCAPES)), "escaped"),
    "forged-checkpoint": (_forged_checkpoint, "fails-verify"),
    "amplified-blob": (_amplified, "refused-lazy"),
}


def craft(name: str, path: str | Path, base: str | Path) -> Path:
    """Write crafted case ``name`` to ``path`` from the parts of ``base``."""
    mutate, _ = CASES[name]
    return write_parts(path, mutate(read_parts(base)))


# --- random hostile mutations (the fuzz campaign: tests/test_hostile_inputs.py, scripts/fuzz.py hostile) ----

HOSTILE_VALUES: list[Any] = [
    None, True, -1, 0, 1 << 63, 1 << 64, -(1 << 70), math.nan, math.inf, -math.inf, 0.5, "", "x" * 300,
    ESCAPES, "/etc/passwd", "/proc/kmsg", "../../x.toml", b"", b"\x00" * 16, b"\xff" * 32, [], [1, [2, [3]]],
    {}, {"a": {"b": {"c": 1}}}, "00" * 16, "0" * 31,
]


def random_mutation(rnd: Any, parts: Parts) -> tuple[Parts, str]:
    """One or two random hostile changes to a run's parts: (new parts, what was done)."""
    h, ops, cps = copy.deepcopy(parts[0]), copy.deepcopy(parts[1]), copy.deepcopy(parts[2])
    done = []
    for _ in range(1 + (rnd.random() < 0.3)):
        what = rnd.choice(["op-field", "counter", "digest", "header", "config", "checkpoint-pte",
                           "checkpoint-node", "named-case"])
        v = rnd.choice(HOSTILE_VALUES)
        if what == "op-field":
            i = rnd.randrange(len(ops))
            key = rnd.choice(["verb", "args", "line", "text"])
            ops[i][0][key] = v
            done.append(f"op {i + 1} {key}={v!r:.40}")
        elif what == "counter":
            i = rnd.randrange(len(ops))
            key = rnd.choice(sorted(ops[i][1]) + ["new_counter"])
            ops[i][1][key] = v
            done.append(f"op {i + 1} counter {key}={v!r:.40}")
        elif what == "digest":
            i = rnd.randrange(len(ops))
            ops[i][2] = v
            done.append(f"op {i + 1} digest={v!r:.40}")
        elif what == "header":
            key = rnd.choice(["scenario_name", "cpu", "kernel", "granule", "policy"])
            if isinstance(v, str):
                h = replace(h, **{key: v})
                done.append(f"header {key}={v!r:.40}")
        elif what == "config":
            key = rnd.choice(["cpu", "kernel", "granule", "seed", "policy", "memory", "mthp", "check"])
            extra = copy.deepcopy(h.extra)
            extra["config"][key] = v
            h = replace(h, extra=extra)
            done.append(f"config {key}={v!r:.40}")
        elif what == "checkpoint-pte":
            c = rnd.choice([c for c in cps if c])
            try:
                forge_pte(cps[c])
                done.append(f"checkpoint {c}: one PTE forged")
            except AssertionError:
                done.append(f"checkpoint {c}: nothing to forge")
        elif what == "checkpoint-node":
            c = rnd.choice(sorted(cps))
            node = cps[c]
            path = []
            while isinstance(node, (dict, list)) and node and rnd.random() < 0.75:
                key = rnd.choice(sorted(node)) if isinstance(node, dict) else rnd.randrange(len(node))
                path.append(key)
                if not isinstance(node[key], (dict, list)) or rnd.random() < 0.3:
                    node[key] = v
                    break
                node = node[key]
            done.append(f"checkpoint {c} at {path}: {v!r:.40}")
        else:
            name = rnd.choice(sorted(CASES))
            if name == "amplified-blob" and rnd.random() < 0.9:
                name = "forged-checkpoint"  # the expensive one, now and then
            h, ops, cps = CASES[name][0]((h, ops, cps))
            done.append(f"case {name}")
    return (h, ops, cps), "; ".join(done)


COMMANDS = [["replay", "{f}"], ["replay", "{f}", "--verify"], ["replay", "{f}", "--json"],
            ["replay", "{f}", "--verify", "--json"], ["show", "{f}", "--at", "25"],
            ["show", "{f}", "--at", "15.3"], ["diff", "{f}", "{base}"],
            ["diff", "{f}", "{base}", "--at", "25", "--json"], ["run", "--from", "{f}"],
            ["run", "--from", "{f}", "--json"]]


def check_command(argv: list[str], time_limit: float = 30.0) -> tuple[int, str, str, float]:
    """Run ``ptlab ARGV`` in this process: (exit status, stdout, stderr, seconds).
    AssertionError if the contract is broken: a hang, a status other than 0/1/2,
    a traceback or internal error, a raw escape, an error in more than one line,
    or --json output that is not strict JSON."""
    import contextlib
    import io
    import json
    import signal
    import time

    from tui.cli import main

    out, err = io.StringIO(), io.StringIO()

    def alarm(signum: int, frame: Any) -> None:
        raise TimeoutError(f"ptlab {' '.join(argv)} ran for more than {time_limit} s")

    old = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, time_limit)
    t0 = time.perf_counter()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    dt = time.perf_counter() - t0
    o, e = out.getvalue(), err.getvalue()
    assert code in (0, 1, 2), (argv, code, e)
    assert "\x1b" not in o and "\x1b" not in e and "\x07" not in o, (argv, "raw escape")
    assert "Traceback" not in e and "internal error" not in e, (argv, e)
    errors = [ln for ln in e.splitlines() if not ln.startswith("ptlab: warning: ")]
    # 0: no error line; 2: exactly one; 1 (a failed check): one, or none when stdout says it (diff)
    assert len(errors) == (0 if code == 0 else 1) or (code == 1 and not errors), (argv, code, e)
    if "--json" in argv:
        json.loads(o, parse_constant=lambda c: (_ for _ in ()).throw(AssertionError(f"JSON constant {c}")))
    return code, o, e, dt


def campaign(base: str | Path, scratch: str | Path, cases: int, seed: int, keep: str | Path | None = None,
             progress: Callable[[int, Any], None] | None = None) -> dict[str, Any]:
    """``cases`` random hostile files from ``base``, each through one random command.
    Returns the counts; failures (contract violations) are listed with their mutation,
    and their files copied to ``keep``."""
    import collections
    import random
    import shutil
    import time

    rnd = random.Random(seed)
    parts = read_parts(base)
    counts: collections.Counter[str] = collections.Counter()
    failures: list[str] = []
    slowest = 0.0
    t0 = time.perf_counter()
    f = Path(scratch) / "case.ptsnap"
    for i in range(cases):
        new, desc = random_mutation(rnd, parts)
        try:
            write_parts(f, new)
        except Exception:  # noqa: BLE001 - the writer refuses what it cannot write (not plain, too deep)
            counts["refused by the writer"] += 1
            continue
        argv = [a.format(f=f, base=base) for a in rnd.choice(COMMANDS)]
        try:
            code, _, _, dt = check_command(argv)
            counts[f"exit {code}"] += 1
            slowest = max(slowest, dt)
        except (AssertionError, TimeoutError) as e:
            counts["failures"] += 1
            failures.append(f"case {i}: {desc}: {' '.join(argv)}: {e}")
            if keep is not None:
                Path(keep).mkdir(parents=True, exist_ok=True)
                shutil.copy(f, Path(keep) / f"hostile-{seed}-{i}.ptsnap")
        if progress is not None:
            progress(i + 1, counts)
    return {"cases": cases, "seed": seed, "counts": dict(counts), "failures": failures,
            "seconds": time.perf_counter() - t0, "slowest": slowest}


def patch_index(src: str | Path, dst: str | Path, change: Callable[[dict[str, Any]], None]) -> Path:
    """Copy ``src`` with its index record changed by ``change`` (same encoded size) and its CRC fixed."""
    import struct
    import zlib

    import msgpack

    d = bytearray(Path(src).read_bytes())
    _, at = struct.unpack("<QQ", d[-16:])
    length, kind, flags, _crc = struct.unpack("<IBBI", d[at:at + 10])
    index = msgpack.unpackb(bytes(d[at + 10:at + 10 + length]))
    change(index)
    body = msgpack.packb(index)
    assert len(body) == length, "the change must keep the index's encoded size"
    head = struct.pack("<IBB", length, kind, flags)
    d[at:at + 10 + length] = head + struct.pack("<I", zlib.crc32(head + body)) + body
    Path(dst).write_bytes(bytes(d))
    return Path(dst)
