# SPDX-License-Identifier: GPL-2.0-only
"""Values in scenario text: sizes and ``{EXPR}`` integer expressions.

A size is ``4K``, ``64K``, ``2M``, ``1G``, hex (``0x10000``) or plain
decimal bytes, below 2**64. Inside ``repeat`` blocks, ``{EXPR}`` is replaced
by the value of an integer expression over the loop variables, sizes and
numbers with ``+ - * / %``, unary minus and parentheses
(docs/scenarios.md). An expression is parsed once into a tree of closures --
no eval -- and evaluated per op of its loop; its size is bounded before
anything is built (``MAX_OPERATORS`` binary operators, ``MAX_NESTING``
levels) and every value stays below 2**64 in magnitude. Errors are
ScenarioError (the caller adds the file and line).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from engine.errors import ScenarioError

_SIZE = re.compile(r"^(\d+)([kmgt]?)(i?b)?$", re.IGNORECASE | re.ASCII)
_UNITS = {"": 0, "k": 10, "m": 20, "g": 30, "t": 40}
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
MAX_VALUE = 1 << 64  # sizes, offsets, addresses and expression values stay below this
MAX_NESTING = 32  # parentheses / unary minus in one {EXPR}
MAX_OPERATORS = 128  # binary operators in one {EXPR}


def show_token(text: str, limit: int = 40) -> str:
    """A token for an error message: repr, cut short."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + "..."


def parse_size(text: str) -> int:
    """4K, 64K, 2M, 1G, 0x10000 or plain decimal bytes (below 2**64)."""
    t = text.strip().replace("_", "")
    if len(t) > 40:
        raise ScenarioError(f"size {show_token(text)} is too long")
    if t.lower().startswith("0x"):
        if not re.fullmatch(r"[0-9a-fA-F]+", t[2:]):
            raise ScenarioError(f"bad hex number {show_token(text)}")
        v = int(t[2:], 16)
    else:
        mt = _SIZE.match(t)
        if not mt:
            raise ScenarioError(f"bad size {show_token(text)} (use 4K, 64K, 2M, 1G or hex like 0x10000)")
        v = int(mt.group(1)) << _UNITS[mt.group(2).lower()]
    if v >= MAX_VALUE:
        raise ScenarioError(f"size {show_token(text)} is too large (the limit is 2**64 - 1)")
    return v


def looks_like_size(tok: str) -> bool:
    """The token parses as a size (an optional length after +OFF, a split size)."""
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
                raise ScenarioError(f"unknown variable {show_token(name)} (loop variables: "
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
    raise ScenarioError(f"unexpected {show_token(text)} in expression")


_COMPILED: dict[str, _Compiled] = {}


def _expr_value(text: str, env: dict[str, int]) -> int:
    c = _COMPILED.get(text)
    if c is None:
        c = _Compiled(text)
        if len(_COMPILED) < 4096:
            _COMPILED[text] = c
    return c.fn(env)


# op text -> (the text before its first {EXPR}, ((expression, the text after it), ...)): a
# repeat substitutes the same few lines once per op, and a regex pass per op was most of the
# cost of listing a million-op session's ops (saving it).
_Template = tuple[str, tuple[tuple[Expr, str], ...]]
_TEMPLATES: dict[str, _Template] = {}


def _template(text: str) -> _Template | None:
    """``text`` cut at its ``{EXPR}``s, each compiled; None if one does not compile."""
    parts = _PLACEHOLDER.split(text)
    try:
        fns = [_Compiled(e).fn for e in parts[1::2]]
    except ScenarioError:
        # substitute() then goes the slow way, which raises the first error in text order
        return None
    return parts[0], tuple(zip(fns, parts[2::2], strict=True))


def substitute(text: str, env: dict[str, int]) -> str:
    """``text`` with every ``{EXPR}`` replaced by its value, the loop variables in ``env``."""
    t = _TEMPLATES.get(text)
    if t is None:
        t = _template(text)
        if t is None:
            return _PLACEHOLDER.sub(lambda m: str(_expr_value(m.group(1), env)), text)
        if len(_TEMPLATES) < 4096:
            _TEMPLATES[text] = t
    out, rest = t
    for fn, after in rest:  # left to right, as the regex pass: the same first error
        out += str(fn(env)) + after
    return out
