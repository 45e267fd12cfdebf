# SPDX-License-Identifier: GPL-2.0-only
"""The ``.pts`` scenario language: text -> header + a sequence of Ops.

Line based; ``#`` starts a comment; one directive or op per line. The
language reference is docs/scenarios.md. In short::

    kernel v7.0                 # directives first
    mthp 64K=always
    mmap buf 1M
    repeat 16 i                 # a block run 16 times, i = 0 .. 15
      touch buf +{i*64K} 4K write
    end

``repeat N [VAR] ... end`` blocks nest; inside them ``{EXPR}`` is replaced
by the value of an integer expression over the loop variables, sizes and
numbers with ``+ - * / %`` and parentheses (engine/expressions.py). The op
sequence is lazy: a million-op session costs memory for its text, not for
a million Ops, and ``ops[i]`` is computed directly (for seeking).

This module reads the directives and the program structure; each op's
words are parsed by its verb's own parser, beside the verb's handler in
engine/verbs.py, so a new verb is written in one place.

Errors are ScenarioError with ``file:line: message``. Every value is
bounded before anything is allocated (``MAX_OPS`` ops, numbers below 2**64,
``MAX_SCENARIO_BYTES`` of text, expressions nested at most
``engine.expressions.MAX_NESTING`` deep); the machine bounds the sizes it
will model (engine/limits.py).
"""

from __future__ import annotations

import bisect
import math
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, overload

from engine import limits
from engine.arch.profiles import get_profile
from engine.errors import ScenarioError
from engine.expressions import parse_size, show_token, substitute
from engine.granule import granule
from engine.hw.cpus import load_cpu
from engine.mm.thp import SETTINGS, TOP_SETTINGS, ThpPolicy
from engine.ops import Op
from engine.policy import check_policy_spec
from engine.safeio import UnsafeFileError, read_user_text, shown
from engine.scenario_machine import CHECK_MODES, MachineConfig
from engine.verbs import SYNTAX, VERBS

DIRECTIVES = ("kernel", "granule", "cpu", "seed", "mthp", "thp", "policy", "memory", "swap",
              "readahead", "fault_around", "check")
MAX_OPS = limits.MAX_OPS  # ops in one scenario, all loops unrolled
MAX_REPEAT = MAX_OPS
MAX_SCENARIO_BYTES = 16 << 20


# --- ops ----------------------------------------------------------------------------
def parse_op(toks: list[str]) -> tuple[str, dict[str, Any]]:
    """One op line's words -> (verb, args), by the verb's own parser (engine.verbs)."""
    verb = toks[0]
    if verb not in VERBS:
        raise ScenarioError(f"unknown verb or directive {verb!r} (verbs: {', '.join(sorted(VERBS))})")
    return verb, SYNTAX[verb](toks[1:])


# --- program structure ----------------------------------------------------------------
@dataclass
class _Line:
    line: int
    text: str
    op: Op | None  # fixed op, or None when the text has {placeholders}


@dataclass
class _Repeat:
    line: int
    count: int
    var: str | None
    body: list[Any] = field(default_factory=list)
    size: int = 0  # ops per iteration


def _size(items: list[Any]) -> int:
    return sum(1 if isinstance(it, _Line) else it.count * it.size for it in items)


class OpSeq(Sequence[Op]):
    """The ops of a scenario, computed on demand. ``ops[i]`` costs a binary
    search per loop level (prefix sums of each item list's op counts)."""

    def __init__(self, items: list[Any], file: str):
        self.items = items
        self.file = file
        self._len = _size(items)
        self._cache: dict[tuple[int, str], Op] = {}
        self._starts: dict[int, list[int]] = {}  # id(item list) -> op index where each item starts

    def _starts_of(self, items: list[Any]) -> list[int]:
        st = self._starts.get(id(items))
        if st is None:
            st = []
            n = 0
            for it in items:
                st.append(n)
                n += 1 if isinstance(it, _Line) else it.count * it.size
            self._starts[id(items)] = st
        return st

    def __len__(self) -> int:
        return self._len

    def _make(self, it: _Line, env: dict[str, int]) -> Op:
        if it.op is not None:
            return it.op
        try:
            text = substitute(it.text, env)
            key = (it.line, text)
            op = self._cache.get(key)
            if op is not None:
                return op
            verb, args = parse_op(text.split())
        except ScenarioError as e:
            raise ScenarioError(e.message, it.line, self.file) from None
        op = Op(verb, args, it.line, text)
        if len(self._cache) >= 1 << 16:
            self._cache.clear()
        self._cache[key] = op  # a loop that cycles through a few values parses each once
        return op

    @overload
    def __getitem__(self, i: int) -> Op: ...

    @overload
    def __getitem__(self, i: slice) -> list[Op]: ...

    def __getitem__(self, i: int | slice) -> Op | list[Op]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self._len))]
        n = i + self._len if i < 0 else i
        if not 0 <= n < self._len:
            raise IndexError(n)
        items = self.items
        env: dict[str, int] = {}
        while True:
            starts = self._starts_of(items)
            # the last item starting at or before n (an empty loop shares its start
            # with the next item, so it is never the one found)
            j = bisect.bisect_right(starts, n) - 1
            it = items[j]
            n -= starts[j]
            if isinstance(it, _Line):
                return self._make(it, env)
            k, n = divmod(n, it.size)
            if it.var:
                env = {**env, it.var: k}
            items = it.body

    def __iter__(self) -> Iterator[Op]:
        yield from self._walk(self.items, {})

    def _walk(self, items: list[Any], env: dict[str, int]) -> Iterator[Op]:
        for it in items:
            if isinstance(it, _Line):
                yield self._make(it, env)
            elif it.size:  # a loop of nothing (however many times) is nothing
                for k in range(it.count):
                    yield from self._walk(it.body, {**env, it.var: k} if it.var else env)


@dataclass
class Scenario:
    name: str
    description: str
    header: dict[str, Any]
    ops: OpSeq
    source: str = ""

    def config(self, **overrides: Any) -> MachineConfig:
        """MachineConfig from the header; overrides (e.g. CLI options) win."""
        h = dict(self.header)
        h.update({k: v for k, v in overrides.items() if v is not None})
        return MachineConfig(**h)


def _directive(word: str, rest: list[str], header: dict[str, Any]) -> None:
    """Record one directive in the header, checking its value now (so that a
    mistake is reported at its line, not when the machine is built)."""
    if word in ("kernel", "granule", "cpu", "policy", "thp", "check"):
        if len(rest) != 1:
            raise ScenarioError(f"{word} takes one value")
        value = rest[0]
        try:
            if word == "granule":
                granule(value)
            elif word == "kernel":
                get_profile(value)
            elif word == "cpu":
                load_cpu(value)
            elif word == "policy":
                check_policy_spec(value)
            elif word == "thp":
                if value not in TOP_SETTINGS:
                    raise ValueError(f"thp takes one of {', '.join(TOP_SETTINGS)}, not {show_token(value)}")
            elif value not in CHECK_MODES:
                raise ValueError(f"check takes one of {', '.join(CHECK_MODES)}, not {show_token(value)}")
        except ValueError as e:  # unknown names (KernelProfileError, CpuProfileError, PolicyError ...)
            raise ScenarioError(str(e)) from None
        header[word] = value
    elif word == "seed":
        if len(rest) != 1 or not re.fullmatch(r"-?[0-9]{1,19}", rest[0]):
            raise ScenarioError("seed takes an integer (at most 19 digits)")
        header["seed"] = int(rest[0])
    elif word == "mthp":
        if not rest:
            raise ScenarioError("mthp takes SIZE=SETTING pairs, e.g. 64K=always")
        mthp = header.setdefault("mthp", {})
        for t in rest:
            if "=" not in t:
                raise ScenarioError(f"mthp: expected SIZE=SETTING, got {show_token(t)}")
            size, setting = t.split("=", 1)
            parse_size(size)
            if setting not in SETTINGS:
                raise ScenarioError(f"mthp: the setting for {show_token(size)} must be one of "
                                    f"{', '.join(SETTINGS)}, not {show_token(setting)}")
            mthp[size] = setting
    elif word == "memory":
        if not rest:
            raise ScenarioError("memory takes a size and optionally fresh or aged[=FRACTION]")
        header["memory"] = limits.check_size("memory", parse_size(rest[0]))
        for t in rest[1:]:
            if t == "fresh":
                header["aged"] = 0.0
            elif t.startswith("aged"):
                frac = t[5:] if t.startswith("aged=") else "0.05"
                try:
                    f = float(frac)
                except ValueError:
                    raise ScenarioError(f"bad aged fraction {show_token(frac)}") from None
                if not (math.isfinite(f) and 0.0 <= f < 1.0):
                    raise ScenarioError(f"aged fraction {show_token(frac)} must be at least 0 and below 1")
                header["aged"] = f
            else:
                raise ScenarioError(f"unknown memory option {show_token(t)} (fresh | aged[=FRACTION])")
    elif word in ("swap", "readahead", "fault_around"):
        if len(rest) != 1:
            raise ScenarioError(f"{word} takes a size")
        header[word] = limits.check_size(word, parse_size(rest[0]))


def _lines(text: str) -> Iterator[tuple[int, str]]:
    """(line number, text) as an editor counts lines: only newlines end them
    (str.splitlines() would also split at form feeds, U+2028 ...)."""
    for lineno, raw in enumerate(text.split("\n"), 1):
        yield lineno, raw.removesuffix("\r")


def _check_mthp_sizes(header: dict[str, Any]) -> None:
    """mTHP sizes exist for orders 2 .. PMD order of the scenario's own granule."""
    g = granule(header.get("granule", "4K"))
    thp = ThpPolicy(g.page_shift, g.pmd_order)
    for size in header.get("mthp", {}):
        try:
            thp.order_of_size(size)
        except ValueError as e:
            raise ScenarioError(f"mthp: {e}") from None


def parse(text: str, file: str = "<scenario>", name: str = "") -> Scenario:
    if len(text) > MAX_SCENARIO_BYTES:
        raise ScenarioError(f"{file}: the scenario is larger than {MAX_SCENARIO_BYTES >> 20} MiB")
    header: dict[str, Any] = {}
    directive_line: dict[str, int] = {}
    stack: list[_Repeat] = []
    top: list[Any] = []
    description = ""
    seen_op = False
    top_ops = 0
    for lineno, raw in _lines(text):
        line = raw.split("#", 1)[0].strip()
        if not line:
            comment = raw.strip().lstrip("#").strip()
            if (not description and raw.strip().startswith("#") and not seen_op and not header
                    and comment and not comment.startswith("SPDX-License-Identifier")):
                description = comment
            continue
        toks = line.split()
        word = toks[0]
        try:
            if word in DIRECTIVES:
                if seen_op or stack:
                    raise ScenarioError(f"directive {word!r} must come before the first op")
                _directive(word, toks[1:], header)
                directive_line[word] = lineno
                continue
            seen_op = True
            body = stack[-1].body if stack else top
            if word == "repeat":
                if len(toks) not in (2, 3):
                    raise ScenarioError("repeat takes a count and optionally a variable name")
                count = parse_size(toks[1])
                if not 0 <= count <= MAX_REPEAT:
                    raise ScenarioError(f"repeat count {count} out of range (at most {MAX_REPEAT:,})")
                var = toks[2] if len(toks) == 3 else None
                if var is not None and not re.fullmatch(r"[A-Za-z_]\w{0,63}", var, re.ASCII):
                    raise ScenarioError(f"bad loop variable name {show_token(var)}")
                if var is not None and any(r.var == var for r in stack):
                    raise ScenarioError(f"loop variable {var!r} is already used by an enclosing repeat")
                r = _Repeat(lineno, count, var)
                body.append(r)
                stack.append(r)
                continue
            if word == "end":
                if len(toks) != 1:
                    raise ScenarioError("end takes no arguments")
                if not stack:
                    raise ScenarioError("'end' without 'repeat'")
                r = stack.pop()
                r.size = _size(r.body)
                if not stack:
                    top_ops += r.count * r.size
                if r.count * r.size > MAX_OPS or top_ops > MAX_OPS:
                    raise ScenarioError(f"the scenario would run more than {MAX_OPS:,} ops "
                                        f"(this repeat alone: {r.count * r.size:,})", r.line)
                continue
            if "{" in line:
                env = {r.var: 0 for r in stack if r.var}
                parse_op(substitute(line, env).split())  # check the syntax now
                body.append(_Line(lineno, line, None))
            else:
                verb, args = parse_op(toks)
                body.append(_Line(lineno, line, Op(verb, args, lineno, line)))
            if not stack:
                top_ops += 1
                if top_ops > MAX_OPS:
                    raise ScenarioError(f"the scenario would run more than {MAX_OPS:,} ops")
        except ScenarioError as e:
            raise ScenarioError(e.message, e.line or lineno, file) from None
    if stack:
        raise ScenarioError("'repeat' without 'end'", stack[-1].line, file)
    try:
        _check_mthp_sizes(header)
    except ScenarioError as e:
        raise ScenarioError(e.message, directive_line.get("mthp", 0), file) from None
    if _size(top) > MAX_OPS:
        raise ScenarioError(f"the scenario would run more than {MAX_OPS:,} ops", 0, file)
    return Scenario(name or Path(file).stem, description, header, OpSeq(top, file), text)


def load(path: str | Path) -> Scenario:
    p = Path(path)
    try:
        # only a regular file, bounded: a FIFO would block, /dev/zero never ends, /proc/kmsg both
        text = read_user_text(p, MAX_SCENARIO_BYTES, "scenario file")
    except UnsafeFileError as e:
        raise ScenarioError(str(e)) from None
    return parse(text, shown(p), p.stem)


# --- built-ins --------------------------------------------------------------------------
def _builtin_dir() -> Traversable:
    return resources.files("engine") / "scenarios"


def builtin_names() -> list[str]:
    return sorted(p.name[:-4] for p in _builtin_dir().iterdir() if p.name.endswith(".pts"))


def builtin(name: str) -> Scenario:
    if not name or len(name) > 200 or "/" in name or "\0" in name:
        raise ScenarioError(f"no built-in scenario {name[:80]!r} (see 'ptlab scenarios')")
    f = _builtin_dir() / f"{name}.pts"
    if not f.is_file():
        raise ScenarioError(f"no built-in scenario {name!r} (see 'ptlab scenarios')")
    return parse(f.read_text(), f"{name}.pts", name)


def builtin_list() -> list[tuple[str, str]]:
    return [(n, builtin(n).description) for n in builtin_names()]


def resolve(target: str) -> Scenario:
    """A built-in name or a path to a .pts file."""
    if target.endswith(".pts") or "/" in target or os.path.isfile(target):  # os.path: no OSError
        return load(target)
    return builtin(target)
