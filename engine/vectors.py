# SPDX-License-Identifier: GPL-2.0-only
"""Replay ptep conformance vectors (format ``ptlab-ptep-vectors/1``).

Each trace names a granule, kernel profile and CPU, and lists calls through
the Python API with the expected return value, the TLB flushes the arch code
asked for ([start, end) of every ``flush_tlb_range`` event) and every
descriptor whose raw value changed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.python_api import Simulator
from engine.writes import descriptor_writes

FORMAT = "ptlab-ptep-vectors/1"


@dataclass
class Mismatch:
    trace: int
    call_index: int
    call: str
    args: list[Any]
    what: str
    expected: Any
    found: Any

    def __str__(self) -> str:
        def fmt(v: Any) -> str:
            if isinstance(v, int) and not isinstance(v, bool):
                return hex(v)
            return repr(v)

        args = ", ".join(fmt(a) for a in self.args)
        return (f"trace {self.trace} call {self.call_index} {self.call}({args}): {self.what}: "
                f"expected {fmt(self.expected)}, found {fmt(self.found)}")


def load(path: str | Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(Path(path).read_text())
    if data.get("format") != FORMAT:
        raise ValueError(f"{path}: not a {FORMAT} file (format={data.get('format')!r})")
    return data


def _normalise_ret(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    return int(value)


def replay_trace(trace: dict[str, Any], index: int = 0) -> Iterator[Mismatch]:
    sim = Simulator(granule=trace["granule"], kernel=trace["kernel"], cpu=trace["cpu"])
    for ci, call in enumerate(trace["calls"]):
        name, args = call["call"], call["args"]
        if name == "add_folio":
            sim.add_folio(*args)
            continue
        mark = sim.log.mark()
        if name == "walk":
            ret: Any = sim.walk(*args)
        else:
            ret = getattr(sim.ptep, name)(*args)
        events = sim.log.since(mark)
        if "ret" in call:
            exp = call["ret"]
            got = _normalise_ret(ret)
            if isinstance(exp, bool) or isinstance(got, bool):
                same = (exp is None and got is None) or (exp is not None and got is not None
                                                          and bool(exp) == bool(got))
            else:
                same = exp == got
            if not same:
                yield Mismatch(index, ci, name, args, "return value", exp, got)
        flushes = [[e[1], e[2]] for e in events if e[0] == "flush_tlb_range"]
        if "flushes" in call and flushes != call["flushes"]:
            yield Mismatch(index, ci, name, args, "TLB flushes", call["flushes"], flushes)
        if "after" in call:
            first_old: dict[int, int] = {}
            for w in descriptor_writes(events):
                if not w.pmd and w.addr not in first_old:
                    first_old[w.addr] = w.old
            changed = {a: sim.raw(a) for a, old in first_old.items() if sim.raw(a) != old}
            expected = {int(k, 16): v for k, v in call["after"].items()}
            if changed != expected:
                diff_keys = sorted(set(changed) ^ set(expected) |
                                   {k for k in changed if changed.get(k) != expected.get(k)})
                k = diff_keys[0]
                yield Mismatch(index, ci, name, args, f"descriptor at {k:#x}",
                               expected.get(k, "unchanged"), changed.get(k, "unchanged"))
        sim.log.clear()


def replay(data: dict[str, Any]) -> Iterator[Mismatch]:
    for ti, trace in enumerate(data["traces"]):
        yield from replay_trace(trace, ti)
