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
numbers with ``+ - * / %`` and parentheses. The op sequence is lazy: a
million-op session costs memory for its text, not for a million Ops, and
``ops[i]`` is computed directly (for seeking).

Errors are ScenarioError with ``file:line: message``. Every value is
bounded before anything is allocated (``MAX_OPS`` ops, numbers below 2**64,
``MAX_SCENARIO_BYTES`` of text, expressions nested at most ``MAX_NESTING``
deep); the machine bounds the sizes it will model (engine/limits.py).
"""

from __future__ import annotations

import bisect
import math
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, overload

from engine import limits
from engine.arch.profiles import get_profile
from engine.errors import ScenarioError
from engine.granule import granule
from engine.hw.cpus import load_cpu
from engine.machine import CHECK_MODES, MachineConfig
from engine.mm.thp import SETTINGS, TOP_SETTINGS, ThpPolicy
from engine.mm.vma import PROTS
from engine.ops import Op
from engine.policy import check_policy_spec
from engine.safeio import UnsafeFileError, read_user_text, shown
from engine.verbs import ADVICE, VERBS

DIRECTIVES = ("kernel", "granule", "cpu", "seed", "mthp", "thp", "policy", "memory", "swap",
              "readahead", "fault_around", "check")
_SIZE = re.compile(r"^(\d+)([kmgt]?)(i?b)?$", re.IGNORECASE | re.ASCII)
_UNITS = {"": 0, "k": 10, "m": 20, "g": 30, "t": 40}
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
MAX_OPS = limits.MAX_OPS  # ops in one scenario, all loops unrolled
MAX_REPEAT = MAX_OPS
MAX_VALUE = 1 << 64  # sizes, offsets, addresses and expression values stay below this
MAX_NESTING = 32  # parentheses / unary minus in one {EXPR}
MAX_OPERATORS = 128  # binary operators in one {EXPR}
MAX_SCENARIO_BYTES = 16 << 20


# --- values -------------------------------------------------------------------------
def _show(text: str, limit: int = 40) -> str:
    """A token for an error message: repr, cut short."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + "..."


def parse_size(text: str) -> int:
    """4K, 64K, 2M, 1G, 0x10000 or plain decimal bytes (below 2**64)."""
    t = text.strip().replace("_", "")
    if len(t) > 40:
        raise ScenarioError(f"size {_show(text)} is too long")
    if t.lower().startswith("0x"):
        if not re.fullmatch(r"[0-9a-fA-F]+", t[2:]):
            raise ScenarioError(f"bad hex number {_show(text)}")
        v = int(t[2:], 16)
    else:
        mt = _SIZE.match(t)
        if not mt:
            raise ScenarioError(f"bad size {_show(text)} (use 4K, 64K, 2M, 1G or hex like 0x10000)")
        v = int(mt.group(1)) << _UNITS[mt.group(2).lower()]
    if v >= MAX_VALUE:
        raise ScenarioError(f"size {_show(text)} is too large (the limit is 2**64 - 1)")
    return v


def _looks_like_size(tok: str) -> bool:
    try:
        parse_size(tok)
        return True
    except ScenarioError:
        return False


class _Tokens:
    """The tokens of an {EXPR} and a cursor over them, for the compiler below (no eval)."""

    _TOK = re.compile(r"\s*(?:(0x[0-9a-fA-F_]+|\d+[kKmMgGtT]?)|([A-Za-z_]\w*)|(.))")

    def __init__(self, text: str):
        self.toks: list[tuple[str, str]] = []
        pos = 0
        text = text.strip()
        while pos < len(text):
            m = self._TOK.match(text, pos)
            if m is None:
                break
            pos = m.end()
            if m.group(1):
                self.toks.append(("num", m.group(1)))
            elif m.group(2):
                self.toks.append(("var", m.group(2)))
            elif m.group(3) and not m.group(3).isspace():
                self.toks.append(("op", m.group(3)))
        self.i = 0
        self.depth = 0

    def _peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None


def _bound(v: int) -> int:
    if not -MAX_VALUE < v < MAX_VALUE:
        raise ScenarioError("expression value out of range (|value| must stay below 2**64)")
    return v


class _Compiled:
    """An {EXPR} parsed once into a tree of closures (still no eval); evaluated
    per op of a repeat, which a million-op session does a million times."""

    __slots__ = ("fn",)

    def __init__(self, text: str):
        p = _Tokens(text)
        if not p.toks:
            raise ScenarioError("empty expression {}")
        # each operator nests one closure: bound them so evaluating never recurses deep
        if _binary_operators(p.toks) > MAX_OPERATORS:
            raise ScenarioError(f"expression has more than {MAX_OPERATORS} operators")
        self.fn = _compile_sum(p)
        if p.i != len(p.toks):
            raise ScenarioError(f"unexpected {p.toks[p.i][1]!r} in expression")


def _binary_operators(toks: list[tuple[str, str]]) -> int:
    """Binary operators in a token list (a '-' after an operand is binary; unary
    minus and parentheses are bounded by MAX_NESTING instead)."""
    n = 0
    prev = None
    for kind, text in toks:
        if kind == "op" and text in "+*/%-" and prev is not None and (prev[0] != "op" or prev[1] == ")"):
            n += 1
        prev = (kind, text)
    return n


# a compiled {EXPR}: the loop variables' values -> the expression's value
Expr = Callable[[dict[str, int]], int]


def _compile_sum(p: _Tokens) -> Expr:
    f = _compile_prod(p)
    while (t := p._peek()) in (("op", "+"), ("op", "-")):
        p.i += 1
        g = _compile_prod(p)
        f = (lambda a, b: lambda env: _bound(a(env) + b(env)))(f, g) if t == ("op", "+") else \
            (lambda a, b: lambda env: _bound(a(env) - b(env)))(f, g)
    return f


def _div(a: int, b: int) -> int:
    if b == 0:
        raise ScenarioError("division by zero in expression")
    return a // b


def _mod(a: int, b: int) -> int:
    if b == 0:
        raise ScenarioError("division by zero in expression")
    return a % b


def _compile_prod(p: _Tokens) -> Expr:
    f = _compile_atom(p)
    while (t := p._peek()) and t[0] == "op" and t[1] in "*/%":
        p.i += 1
        g = _compile_atom(p)
        if t[1] == "*":
            f = (lambda a, b: lambda env: _bound(a(env) * b(env)))(f, g)
        else:
            f = (lambda a, b, op: lambda env: op(a(env), b(env)))(f, g, _div if t[1] == "/" else _mod)
    return f


def _compile_atom(p: _Tokens) -> Expr:
    t = p._peek()
    if t is None:
        raise ScenarioError("expression ends too early")
    p.i += 1
    kind, text = t
    if kind == "op" and text in "(-":
        p.depth += 1
        if p.depth > MAX_NESTING:
            raise ScenarioError(f"expression nested more than {MAX_NESTING} deep")
    if kind == "num":
        v = parse_size(text)
        return lambda env: v
    if kind == "var":
        def var(env: dict[str, int], name: str = text) -> int:
            try:
                return env[name]
            except KeyError:
                raise ScenarioError(f"unknown variable {_show(name)} (loop variables: "
                                    f"{', '.join(env) or 'none'})") from None
        return var
    if text == "(":
        f = _compile_sum(p)
        if p._peek() != ("op", ")"):
            raise ScenarioError("missing ')' in expression")
        p.i += 1
        return f
    if text == "-":
        g = _compile_atom(p)
        return lambda env: -g(env)
    raise ScenarioError(f"unexpected {_show(text)} in expression")


_COMPILED: dict[str, _Compiled] = {}


def _expr_value(text: str, env: dict[str, int]) -> int:
    c = _COMPILED.get(text)
    if c is None:
        c = _Compiled(text)
        if len(_COMPILED) < 4096:
            _COMPILED[text] = c
    return c.fn(env)


def substitute(text: str, env: dict[str, int]) -> str:
    return _PLACEHOLDER.sub(lambda m: str(_expr_value(m.group(1), env)), text)


# --- ops ----------------------------------------------------------------------------
def _offset(tok: str) -> int:
    if not tok.startswith("+"):
        raise ScenarioError(f"expected an offset like +64K, got {tok!r}")
    return parse_size(tok[1:])


def _target(verb: str, toks: list[str], need_len: bool = False) -> tuple[dict[str, Any], list[str]]:
    """NAME [+OFF [LEN]] -> args, remaining tokens."""
    if not toks:
        raise ScenarioError(f"{verb} needs a mapping name")
    args: dict[str, Any] = {"name": toks[0]}
    rest = toks[1:]
    if rest and rest[0].startswith("+"):
        args["off"] = _offset(rest[0])
        rest = rest[1:]
        if rest and _looks_like_size(rest[0]):
            args["len"] = parse_size(rest[0])
            rest = rest[1:]
    if need_len and "len" not in args:
        raise ScenarioError(f"{verb} needs NAME +OFF LEN")
    return args, rest


def _no_more(verb: str, rest: list[str]) -> None:
    if rest:
        raise ScenarioError(f"unexpected {' '.join(rest)!r} after {verb}")


def parse_op(toks: list[str]) -> tuple[str, dict[str, Any]]:
    verb = toks[0]
    rest = toks[1:]
    if verb not in VERBS:
        raise ScenarioError(f"unknown verb or directive {verb!r} (verbs: {', '.join(sorted(VERBS))})")
    if verb == "mmap":
        if len(rest) < 2:
            raise ScenarioError("mmap needs NAME SIZE")
        args: dict[str, Any] = {"name": rest[0], "size": parse_size(rest[1]), "prot": "rw",
                                "kind": "anon", "shared": False, "at": None, "file": None,
                                "hugepage": False}
        i = 2
        while i < len(rest):
            t = rest[i]
            if t in PROTS:
                args["prot"] = t
            elif t == "anon":
                args["kind"] = "anon"
            elif t == "file" or t.startswith("file="):
                args["kind"] = "file"
                if "=" in t:
                    args["file"] = t.split("=", 1)[1] or None
            elif t in ("private", "shared"):
                args["shared"] = t == "shared"
            elif t == "hugepage":
                args["hugepage"] = True
            elif t == "at":
                if i + 1 >= len(rest):
                    raise ScenarioError("'at' needs an address")
                args["at"] = parse_size(rest[i + 1])
                i += 1
            else:
                raise ScenarioError(f"unknown mmap option {t!r}")
            i += 1
        return verb, args
    if verb == "touch":
        args, rest = _target(verb, rest)
        args["access"] = "read"
        args["via"] = "cpu"
        seen = False
        for t in rest:
            if t in ("read", "write"):
                args["access"] = t
                seen = True
            elif t in ("cpu", "smmu"):
                args["via"] = t
            else:
                raise ScenarioError(f"unknown touch option {t!r} (read|write [smmu])")
        if not seen:
            raise ScenarioError("touch needs read or write")
        return verb, args
    if verb == "fork":
        if len(rest) > 1:
            raise ScenarioError("fork takes at most a child name")
        return verb, {"child": rest[0] if rest else None}
    if verb in ("switch", "exit"):
        if verb == "switch" and len(rest) != 1:
            raise ScenarioError("switch needs a process name")
        if len(rest) > 1:
            raise ScenarioError(f"{verb} takes at most a process name")
        return verb, {"proc": rest[0] if rest else None}
    if verb in ("munmap", "migrate", "numa"):
        args, rest = _target(verb, rest)
        _no_more(verb, rest)
        return verb, args
    if verb == "mprotect":
        args, rest = _target(verb, rest, need_len=True)
        if len(rest) != 1 or rest[0] not in PROTS:
            raise ScenarioError(f"mprotect needs a protection ({'|'.join(PROTS)})")
        args["prot"] = rest[0]
        return verb, args
    if verb == "madvise":
        args, rest = _target(verb, rest)
        if len(rest) != 1 or rest[0] not in ADVICE:
            raise ScenarioError(f"madvise needs an advice ({'|'.join(ADVICE)})")
        args["advice"] = rest[0]
        return verb, args
    if verb == "reclaim":
        if len(rest) > 1:
            raise ScenarioError("reclaim takes at most a mapping name")
        if rest:
            return verb, {"name": rest[0]}
        return verb, {"name": None}
    if verb == "mremap":
        if len(rest) != 2:
            raise ScenarioError("mremap needs NAME ADDR")
        return verb, {"name": rest[0], "addr": parse_size(rest[1])}
    if verb == "split":
        # split NAME [+OFF] [ORDER|SIZE] [pmd]: a number is the new order, a
        # size (64K) the new folio size; no +OFF means the whole mapping
        if not rest:
            raise ScenarioError("split needs a mapping name")
        args = {"name": rest[0]}
        rest = rest[1:]
        if rest and rest[0].startswith("+"):
            args["off"] = _offset(rest[0])
            rest = rest[1:]
        args["order"] = 0
        args["pmd"] = False
        for t in rest:
            if t == "pmd":
                args["pmd"] = True
            elif t.isascii() and t.isdigit():  # not '²': str.isdigit takes any Unicode digit
                args["order"] = int(t)
            elif _looks_like_size(t):
                size = parse_size(t)
                if size & (size - 1):
                    raise ScenarioError(f"split size {t} is not a power of two")
                args["order_size"] = size
            else:
                raise ScenarioError(f"unknown split option {t!r} (ORDER, SIZE or pmd)")
        return verb, args
    if verb == "collapse":
        args, rest = _target(verb, rest)
        _no_more(verb, rest)
        return verb, args
    if verb == "gup":
        args, rest = _target(verb, rest)
        for t in rest:
            if t not in ("read", "write", "race"):
                raise ScenarioError(f"unknown gup option {t!r} (read|write, race)")
        args["write"] = "write" in rest
        args["race"] = "race" in rest
        return verb, args
    if verb == "read":
        if not rest:
            raise ScenarioError("read needs a file name")
        args, rest = _target(verb, rest)
        _no_more(verb, rest)
        args["file"] = args.pop("name")
        return verb, args
    raise ScenarioError(f"verb {verb!r} has no syntax")  # pragma: no cover


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
                    raise ValueError(f"thp takes one of {', '.join(TOP_SETTINGS)}, not {_show(value)}")
            elif value not in CHECK_MODES:
                raise ValueError(f"check takes one of {', '.join(CHECK_MODES)}, not {_show(value)}")
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
                raise ScenarioError(f"mthp: expected SIZE=SETTING, got {_show(t)}")
            size, setting = t.split("=", 1)
            parse_size(size)
            if setting not in SETTINGS:
                raise ScenarioError(f"mthp: the setting for {_show(size)} must be one of "
                                    f"{', '.join(SETTINGS)}, not {_show(setting)}")
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
                    raise ScenarioError(f"bad aged fraction {_show(frac)}") from None
                if not (math.isfinite(f) and 0.0 <= f < 1.0):
                    raise ScenarioError(f"aged fraction {_show(frac)} must be at least 0 and below 1")
                header["aged"] = f
            else:
                raise ScenarioError(f"unknown memory option {_show(t)} (fresh | aged[=FRACTION])")
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
                    raise ScenarioError(f"bad loop variable name {_show(var)}")
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
