# SPDX-License-Identifier: GPL-2.0-only
"""Fuzzing the scenario language: the corpus, the mutators and the oracle.

The contract (docs/scenarios.md, docs/guarantees.md): any text handed to
``engine.scenario.parse`` and then run op by op on a Machine either runs, or
stops with one ``ScenarioError`` whose message is one line
``FILE:LINE: message``; through ``ptlab run FILE.pts`` the same line goes to
stderr with exit status 2. Nothing else may escape: no other exception, no
hang (every case runs under an op budget and a kfn-call budget enforced with
the engine's own interrupt poll), no allocation beyond engine/limits.py.

Used by tests/test_scenario_fuzz.py (a bounded campaign on every run) and
scripts/fuzz.py (long campaigns).
"""

from __future__ import annotations

import random
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import OpInterrupted, ScenarioError
from engine.policy import PolicyError
from engine.scenario import _builtin_dir, builtin_names, parse
from engine.scenario_machine import Machine

FILE = "fuzz.pts"
_LOCATED = re.compile(r"^fuzz\.pts:[1-9]\d*: \S")
SMALL_MEMORY = 256 << 20

# tokens a mutation may put anywhere: every keyword, plausible and hostile values
TOKENS = (
    # verbs and directives
    "mmap", "touch", "fork", "switch", "exit", "munmap", "mprotect", "madvise", "reclaim", "migrate",
    "numa", "mremap", "split", "collapse", "read", "gup", "repeat", "end", "kernel", "granule", "cpu",
    "seed", "mthp", "thp", "policy", "memory", "swap", "readahead", "fault_around", "check",
    # options
    "rw", "r", "none", "rx", "rwx", "anon", "file", "file=", "file=data", "private", "shared", "hugepage",
    "at", "read", "write", "smmu", "cpu", "race", "pmd", "dontneed", "free", "cold", "pageout",
    "nohugepage", "fresh", "aged", "aged=0.5", "aged=1", "aged=nan", "aged=-0", "aged=1e308",
    "op", "off", "always", "madvise", "never", "inherit", "64K=always", "2M=always", "16K=madvise",
    "2M=aldays", "=", "=always", "v6.9", "v7.0", "baseline", "seed-basic", "contpte-fold", "4K", "16K",
    "64K", "neoverse-n1", "apple-m2", "nope.toml", "mainline", "any-entry", "scan", "x.py:Y",
    # names
    "buf", "heap", "f", "p0", "p1", "child", "x", "{i}", "a{i}",
    # sizes and offsets, plausible and hostile
    "0", "1", "-1", "7", "2", "9", "10", "21", "4096", "3K", "4K", "8K", "60K", "64K", "2M", "4M", "1G",
    "1T", "64G", "65G", "0x0", "0x1000", "0x7f0000000000", "0xffffffffffffffff", "0x10000000000000000",
    "0x", "0x_", "1_0", "99999999999999999999999999", "9" * 60, "+0", "+4K", "+60K", "+1M", "+1T", "+-4K",
    "+", "+0x", "1000000", "16777216", "16777217", "1000000000",
    # expressions, good and bad
    "{i*4K}", "+{i*64K}", "{1/0}", "{i%0}", "{", "}", "{}", "{i", "i}", "{j}", "{-1}", "{--4K}",
    "{((1))}", "{" + "(" * 40 + "1" + ")" * 40 + "}", "{1T*1T*1T*1T}", "{1G*1G}", "{0x10*i}", "{i+}",
    "{2**3}", "{i-i-4K}", "{unknown}",
    # junk
    "#", "\x00", "\t", "é", "\u2028", "\x0c", "\ufeff", "\\", "'", '"', ";", "--", "-", "%", "..",
)


def corpus() -> dict[str, str]:
    """The built-in scenarios, made small: 1 GiB mappings become 8 MiB, memory
    is 256 MiB (so a case runs in milliseconds), line structure unchanged."""
    out = {}
    for name in builtin_names():
        text = (_builtin_dir() / f"{name}.pts").read_text()
        text = re.sub(r"\b1G\b", "8M", text)
        text = re.sub(r"^memory \S+", f"memory {SMALL_MEMORY >> 20}M", text, flags=re.M)
        if not re.search(r"^memory ", text, re.M):
            text = f"memory {SMALL_MEMORY >> 20}M\n" + text
        out[name] = text
    return out


# --- mutators -----------------------------------------------------------------------------------
def _tok(rnd: random.Random, words: list[str]) -> str:
    return rnd.choice(TOKENS) if rnd.random() < 0.7 else rnd.choice(words)


def mutate(text: str, rnd: random.Random, others: list[str]) -> tuple[str, list[str]]:
    """1-4 mutations of text; returns the new text and the names of the mutations."""
    lines = text.split("\n")
    words = text.split() or ["x"]
    done = []
    for _ in range(rnd.randint(1, 4)):
        if not lines:
            lines = [""]
        i = rnd.randrange(len(lines))
        toks = lines[i].split()
        r = rnd.random()
        if r < 0.08:
            kind = "delete-line"
            del lines[i]
        elif r < 0.14:
            kind = "dup-line"
            lines.insert(rnd.randrange(len(lines) + 1), lines[i])
        elif r < 0.20:
            kind = "swap-lines"
            j = rnd.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
        elif r < 0.45 and toks:
            kind = "replace-token"
            toks[rnd.randrange(len(toks))] = _tok(rnd, words)
            lines[i] = " ".join(toks)
        elif r < 0.55:
            kind = "insert-token"
            toks.insert(rnd.randrange(len(toks) + 1), _tok(rnd, words))
            lines[i] = " ".join(toks)
        elif r < 0.60 and toks:
            kind = "drop-token"
            del toks[rnd.randrange(len(toks))]
            lines[i] = " ".join(toks)
        elif r < 0.70:
            kind = "insert-line"
            lines.insert(rnd.randrange(len(lines) + 1),
                         " ".join(_tok(rnd, words) for _ in range(rnd.randint(1, 5))))
        elif r < 0.76:
            kind = "repeat-wrap"  # wrap a stretch of lines in a loop (sometimes a huge one)
            j = rnd.randrange(i, len(lines) + 1)
            count = rnd.choice(["0", "1", "3", "16", "100000", "16777216", "4294967296", "{i}"])
            var = rnd.choice(["", " i", " j", " i i", " 9x"])
            lines[i:j] = [f"repeat {count}{var}", *lines[i:j], "end" if rnd.random() < 0.9 else ""]
        elif r < 0.84 and lines[i]:
            kind = "char"
            s = lines[i]
            k = rnd.randrange(len(s))
            c = rnd.choice([chr(rnd.randrange(32, 127)), chr(rnd.randrange(0, 0x3000)), "{", "}", "#", "+"])
            lines[i] = s[:k] + c + s[k + 1:] if rnd.random() < 0.5 else s[:k] + c + s[k:]
        elif r < 0.90:
            kind = "splice"
            other = rnd.choice(others).split("\n")
            a = rnd.randrange(len(other))
            lines[i:i] = other[a:a + rnd.randint(1, 6)]
        elif r < 0.95:
            kind = "number"  # change every number on a line the same way
            f = rnd.choice([lambda n: n * 1024, lambda n: n + 1, lambda n: 0, lambda n: n * 3, lambda n: -n])
            lines[i] = re.sub(r"\d+", lambda m, f=f: str(f(int(m.group()))), lines[i])
        else:
            kind = "truncate"
            cut = rnd.randrange(len("\n".join(lines)) + 1)
            lines = "\n".join(lines)[:cut].split("\n")
        done.append(kind)
    return "\n".join(lines), done


# --- the oracle ---------------------------------------------------------------------------------
class ContractViolation(AssertionError):
    pass


@dataclass
class Outcome:
    kind: str  # "ran" (all ops or max_ops), "error" (ScenarioError/PolicyError), "interrupted" (budget)
    message: str = ""
    ops: int = 0
    memory: int | None = None  # the header's memory, when the case overrode it


@dataclass
class Stats:
    cases: int = 0
    outcomes: Counter = field(default_factory=Counter)
    mutations: Counter = field(default_factory=Counter)
    ops: int = 0

    def add(self, out: Outcome, mutations: list[str] = ()) -> None:  # type: ignore[assignment]
        self.cases += 1
        self.outcomes[out.kind] += 1
        self.ops += out.ops
        self.mutations.update(mutations)


def hypothesis_summary(c: Counter[str]) -> str:
    """The summary line for tests/test_scenario_fuzz.py's hypothesis tests, from the counts they
    add up (a run_summary.Tally): per source ("grammar", "text") the examples, the ops run and
    one count per outcome kind."""
    def outcomes(src: str) -> str:
        names = {"ran": "running to the end", "error": "a FILE:LINE error", "interrupted": "the op budget"}
        return ", ".join(f"{c[f'{src} {k}']} {names[k]}" for k in sorted(names) if c[f"{src} {k}"])

    g, t = c["grammar"], c["text"]
    return (f"scenario fuzz: {g + t} hypothesis examples ({g} from the grammar, {c['grammar ops']} ops run, "
            f"ended by {outcomes('grammar')}; {t} arbitrary texts, {c['text ops']} ops run, "
            f"ended by {outcomes('text')}), every one ran or failed with {FILE}:LINE")


def _check_message(msg: str, where: str) -> None:
    if "\n" in msg or "\r" in msg:
        raise ContractViolation(f"{where}: the error is not one line: {msg!r}")
    if not _LOCATED.match(msg):
        raise ContractViolation(f"{where}: the error does not start with {FILE}:LINE: {msg!r}")


def run_case(text: str, max_ops: int = 60, poll_budget: int = 1500) -> Outcome:
    """Parse and run text; ContractViolation if anything breaks the contract.

    ``poll_budget``: interrupt polls allowed (one per 16 kernel calls or
    touched pages) before the case is stopped with the engine's own
    interrupt -- deterministic, unlike a wall-clock limit.
    """
    try:
        s = parse(text, FILE)
        n = len(s.ops)
    except ScenarioError as e:
        _check_message(str(e), "parse")
        return Outcome("error", str(e))
    except Exception as e:  # noqa: BLE001 - the point of the oracle
        raise ContractViolation(f"parse raised {type(e).__name__}: {e}") from e
    mem = s.header.get("memory", 4 << 30)
    override = mem > SMALL_MEMORY
    try:
        m = Machine(s.config(record=False, check="end", memory=min(mem, SMALL_MEMORY)))
    except ScenarioError as e:
        if ":" in str(s.header.get("policy", "")):
            return Outcome("error", str(e))  # loading a user policy file: no scenario line to blame
        raise ContractViolation(f"a parsed scenario's machine failed to build: {e}") from e
    except Exception as e:  # noqa: BLE001
        raise ContractViolation(f"Machine() raised {type(e).__name__}: {e}") from e
    polls = [0]

    def poll() -> bool:
        polls[0] += 1
        return polls[0] > poll_budget

    m.set_interrupt_poll(poll)
    done = 0
    try:
        for k in range(min(n, max_ops)):
            try:
                op = s.ops[k]
            except ScenarioError as e:  # a {EXPR} that fails for this loop index
                _check_message(str(e), f"ops[{k}]")
                return Outcome("error", str(e), done)
            try:
                m.apply(op)
            except (ScenarioError, PolicyError) as e:
                line = getattr(e, "line", 0) or op.line
                msg = f"{FILE}:{line}: {getattr(e, 'message', str(e))}"
                _check_message(msg, f"op {k + 1} ({op})")
                if isinstance(e, ScenarioError) and not e.line:
                    raise ContractViolation(f"op {k + 1} ({op}) failed without a line: {e}") from e
                return Outcome("error", msg, done)
            done += 1
        m.finish()
    except OpInterrupted:
        return Outcome("interrupted", "", done, mem if override else None)
    except ContractViolation:
        raise
    except Exception as e:  # noqa: BLE001
        raise ContractViolation(f"running raised {type(e).__name__}: {e}") from e
    return Outcome("ran", "", done, mem if override else None)


def check_cli(text: str, tmp: Path, out: Outcome, capsys) -> None:  # type: ignore[no-untyped-def]
    """``ptlab run FILE.pts`` on the same text: exit 2 with the same single
    stderr line for an error, exit 0 for a scenario that ran to the end."""
    from tui.cli import main

    path = tmp / FILE
    path.write_text(text)
    capsys.readouterr()
    code = main(["run", str(path)])
    err = capsys.readouterr().err
    lines = err.splitlines()
    if out.kind == "error":
        want = "ptlab: " + out.message.replace(FILE, str(path), 1)
        if code != 2 or lines != [want]:
            raise ContractViolation(f"ptlab run: exit {code}, stderr {err!r}; expected 2 and {want!r}")
    elif code != 0 or lines:
        raise ContractViolation(f"ptlab run: exit {code}, stderr {err!r}; expected 0 and nothing")
