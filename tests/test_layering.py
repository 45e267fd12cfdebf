# SPDX-License-Identifier: GPL-2.0-only
"""Imports only point down the module list (../shared/DESIGN.md, docs/architecture.md).

Every ``import`` in ptlab's packages -- at the top of a module and inside
functions alike, since a function-level import is the same dependency, only
later -- is read with ``ast`` and checked against ``LAYERS``: a module may
import its own group and the groups of lower layers, never a group of its own
layer or a higher one. ``if TYPE_CHECKING:`` imports are left out: they exist
for annotations only (strings under ``from __future__ import annotations``) and
never run. Known exceptions are listed, each with its reason, in ``ALLOWED``;
anything else fails, and so does a module that is in no layer (place it).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("engine", "snapshots", "crosscheck", "tui", "bench")

# Lowest first. A group is a module or a package (the longest matching prefix wins); groups in one
# layer may not import each other. The order is docs/architecture.md's table, with the modules the
# table does not list placed where their imports put them.
LAYERS: list[tuple[str, ...]] = [
    ("engine.errors", "engine.text"),  # not in the table: leaves, import nothing of ours
    ("engine.limits", "engine.safeio"),  # not in the table: ScenarioError, text helpers
    ("engine.expressions",),  # sizes and {EXPR} in scenario text (ScenarioError): below the verbs' parsers
    ("engine.granule",),
    ("engine.pte",),
    ("engine.recorder",),  # not in the table: generated from engine.events.FIELDS, imports nothing
    ("engine.events",),
    ("engine.writes",),  # not in the table: which descriptors events wrote (reads event tuples only)
    ("engine.state",),
    ("engine.hw",),
    ("engine.arch",),
    ("engine.policy",),
    ("engine.explain", "engine.decode"),  # explain: not in the table (DESIGN: "policy.py explain.py ...")
    ("engine.export",),
    ("engine.ops",),
    ("engine.mm",),
    ("engine.cycles",),
    ("engine.invariants",),
    ("engine.contract",),
    # not in the table: the Python API (DESIGN "Python API") over arch/hw/state, and what uses it
    ("engine.python_api",),
    ("engine.vectors", "engine.ptep_machine"),
    ("engine",),  # engine/__init__.py: re-exports Simulator
    ("engine.verbs",),
    ("engine.mapping_summary",),
    ("engine.scenario_machine",),
    ("engine.scenario",),
    ("engine.breakpoints",),  # not in the table: the session's breakpoint conditions
    # not in the table: the session's parts, below it (it imports them): a place in a session,
    # its checkpoints, and the breakpoint search (which drives the session it is handed)
    ("engine.position", "engine.checkpoints"),
    ("engine.breakpoint_search",),
    ("engine.session",),
    ("engine.queries",),  # not in the table: questions about sessions, answered once for CLI and TUI
    ("engine.compare_configs",),  # not in the table: two sessions side by side
    # above the session: it builds machines and sessions from a capture (tomachine.py -> engine.mm,
    # build.py -> engine.python_api, session.py -> engine.session); the table listed it between
    # export and ops until this test
    ("engine.capture",),
    ("engine.machine_kinds",),  # not in the table: open / reopen any kind of machine (capture included)
    # DESIGN: snapshots know the engine; crosscheck imports engine/ and only the CLI imports it
    ("snapshots", "crosscheck"),
    ("tui",),  # the Textual app
    ("bench",),  # measures the engine, snapshots and the app
    ("tui.commands",),  # one module per `ptlab` subcommand
    ("tui.cli",),  # the `ptlab` command
]

# (importer module, imported module): why it is allowed anyway. Each is a known wrong-way import that
# is being (or should be) removed; a new one is a failure.
ALLOWED: dict[tuple[str, str], str] = {}

# DESIGN: "nothing imports crosscheck/ but the CLI" -- stricter than the layers (bench is above it).
CROSSCHECK_IMPORTERS = ("crosscheck", "tui.cli", "tui.commands")
CROSSCHECK_ALLOWED: dict[str, str] = {
    "bench.crosscheck_speed": "the crosscheck's own speed benchmark (translate, boot, compare)",
    "bench.pypy": "fetches PyPy through the crosscheck's private apt state and its cache",
}


def modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for p in sorted((ROOT / pkg).rglob("*.py")):
            parts = list(p.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = p
    return out


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def _import_nodes(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            yield from (n for orelse in node.orelse for n in _import_nodes_in(orelse))
            continue
        yield from _import_nodes_in(node)


def _import_nodes_in(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    if isinstance(node, ast.Import | ast.ImportFrom):
        yield node
    else:
        yield from _import_nodes(node)


def imports(mod: str, path: Path, known: dict[str, Path]) -> Iterator[tuple[int, str, bool]]:
    """(line, first-party module imported, inside a function?) for every import in the module."""
    tree = ast.parse(path.read_text(), str(path))
    in_function = {id(n) for f in ast.walk(tree) if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)
                   for n in ast.walk(f) if isinstance(n, ast.Import | ast.ImportFrom)}
    package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    for node in _import_nodes(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(up + ([node.module] if node.module else []))
            # `from engine import limits` imports the module engine.limits, not engine/__init__
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        for name in dict.fromkeys(names):
            if name.split(".")[0] in PACKAGES:
                while name not in known and "." in name:  # `import engine.pte.x`: the module engine.pte
                    name = name.rpartition(".")[0]
                yield node.lineno, name, id(node) in in_function


def group_of(mod: str) -> tuple[int, str] | None:
    best = None
    for rank, layer in enumerate(LAYERS):
        for g in layer:
            if (mod == g or mod.startswith(g + ".")) and (best is None or len(g) > len(best[1])):
                best = rank, g
    return best


def test_every_module_has_a_layer():
    unplaced = [m for m in modules() if group_of(m) is None]
    assert not unplaced, f"place these in LAYERS (here) and in docs/architecture.md: {unplaced}"


def test_imports_only_point_down_the_layers():
    known = modules()
    wrong, used = [], set()
    for mod, path in known.items():
        rank, group = group_of(mod) or (-1, "")
        for line, target, late in imports(mod, path, known):
            trank, tgroup = group_of(target) or (len(LAYERS), target)
            if tgroup == group or trank < rank:
                continue
            if (mod, target) in ALLOWED:
                used.add((mod, target))
                continue
            where = "function-level " if late else ""
            wrong.append(f"{path.relative_to(ROOT)}:{line}: {where}import of {target} ({tgroup}), "
                         f"but {mod} is in {group}, which may only import layers below it")
    assert not wrong, "\n".join(wrong)
    assert used == set(ALLOWED), f"no longer needed, remove from ALLOWED: {set(ALLOWED) - used}"


def test_only_the_cli_imports_crosscheck():
    known = modules()
    wrong, used = [], set()
    for mod, path in known.items():
        if mod.startswith(CROSSCHECK_IMPORTERS):
            continue
        for line, target, _late in imports(mod, path, known):
            if target == "crosscheck" or target.startswith("crosscheck."):
                if mod in CROSSCHECK_ALLOWED:
                    used.add(mod)
                else:
                    wrong.append(f"{path.relative_to(ROOT)}:{line}: imports {target}")
    assert not wrong, "only the CLI imports crosscheck/ (DESIGN.md):\n" + "\n".join(wrong)
    assert used == set(CROSSCHECK_ALLOWED), f"no longer needed: {set(CROSSCHECK_ALLOWED) - used}"


def test_the_checker_sees_function_level_and_from_imports(tmp_path):
    p = tmp_path / "m.py"
    p.write_text("from typing import TYPE_CHECKING\nfrom engine import limits, nothing_such\n"
                 "if TYPE_CHECKING:\n    from tui.app import PtlabApp\n"
                 "def f():\n    import snapshots.framing\n    from engine.mm.vma import PROTS\n")
    got = list(imports("engine.m", p, modules()))
    assert got == [(2, "engine.limits", False), (2, "engine", False), (6, "snapshots.framing", True),
                   (7, "engine.mm.vma", True)]
