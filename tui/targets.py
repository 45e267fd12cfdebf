# SPDX-License-Identifier: GPL-2.0-only
"""Turn a TUI target (``ptlab tui [TARGET]``) into a Session.

A small registry of resolvers, tried in order. Each one is a function
``(spec, overrides) -> Session | None``: it returns None when the spec is not
its kind, a Session when it is, and raises :class:`tui.errors.UserError` (one
line) when it is its kind but wrong (missing file, bad index, ...).

Built in now:

* ``example`` -- a hand-written ptep trace (``tui.examples``);
* ``FILE.json[:INDEX]`` -- trace INDEX (default 0) of a ``ptlab-ptep-vectors/1``
  file.

To add a kind (built-in scenario name, ``.pts`` file, ``.ptsnap`` snapshot),
write one resolver and call :func:`register` (``first=True`` to be tried
before the others), e.g.::

    def _scenario(spec, ov):
        if spec not in engine.scenario.BUILTINS:
            return None
        ...
        return Session(lambda: Machine(cfg), ops, name=spec, source=text)

    register("scenario", "built-in scenario name", _scenario, first=True)

and, for the default target of ``ptlab`` with no arguments, put its name in
:data:`DEFAULT_TARGETS`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.safeio import shown
from engine.session import Session
from tui.errors import UserError


@dataclass(frozen=True)
class Overrides:
    """Command-line overrides of the target's own settings (None: keep)."""

    kernel: str | None = None
    granule: str | None = None
    cpu: str | None = None
    policy: str | None = None

    def replace(self, **kw: Any) -> Overrides:
        d = {k: getattr(self, k) for k in ("kernel", "granule", "cpu", "policy")}
        d.update(kw)
        return Overrides(**d)


ResolverFn = Callable[[str, Overrides], "Session | None"]


@dataclass(frozen=True)
class Resolver:
    name: str
    description: str
    resolve: ResolverFn


RESOLVERS: list[Resolver] = []

MAX_VECTOR_FILE = 256 << 20

# ``ptlab`` / ``ptlab tui`` with no target opens the first of these that resolves.
DEFAULT_TARGETS: list[str] = ["demo", "page-fault3", "example"]


class GranuleMismatch(UserError):
    """A scenario declares (``# granules: 4K``) the granules it is written for; not this one."""


GRANULE_NEUTRAL = ("page-fault3", "check-03-fork-pte-mapped-2m", "check-13-file-write-faults")


def declared_granules(source: str) -> list[str] | None:
    """The granules a scenario says it is written for (a ``# granules: 4K 16K`` comment line
    before its first op), or None when it does not say (it runs on any)."""
    for line in source.splitlines()[:40]:
        t = line.strip()
        if t.startswith("#") and t.lstrip("#").strip().lower().startswith("granules:"):
            return t.lstrip("#").strip()[len("granules:"):].split("(")[0].replace(",", " ").split()
    return None


def check_granule(name: str, source: str, granule_spec: str | None) -> None:
    """GranuleMismatch (one line) when granule_spec is not one the scenario is written for."""
    if not granule_spec:
        return
    declared = declared_granules(source)
    if declared is None:
        return
    from engine.granule import granule

    try:
        want = granule(granule_spec).name
        names = {granule(d).name for d in declared}
    except (ValueError, KeyError):
        return  # an unknown granule name: the machine says so
    if want not in names:
        plural = "s" if len(declared) > 1 else ""
        raise GranuleMismatch(f"tui: {name} is written for the {' and '.join(declared)} granule{plural}, not "
                              f"{want}; on {want} try {', '.join(GRANULE_NEUTRAL)}")


def register(name: str, description: str, fn: ResolverFn, *, first: bool = False) -> None:
    r = Resolver(name, description, fn)
    global RESOLVERS
    RESOLVERS = [x for x in RESOLVERS if x.name != name]
    if first:
        RESOLVERS.insert(0, r)
    else:
        RESOLVERS.append(r)


def open_target(spec: str | None = None, *, kernel: str | None = None, granule: str | None = None,
                cpu: str | None = None, policy: str | None = None, command: str = "tui") -> Session:
    """The Session for a target spec (None: the default target). Errors name
    ``command`` (the subcommand that asked) instead of ``tui``."""
    try:
        return _open_target(spec, Overrides(kernel, granule, cpu, policy))
    except UserError as e:
        msg = str(e)
        if command != "tui" and msg.startswith("tui: "):
            raise UserError(f"{command}: {msg[5:]}") from None
        raise


def _open_target(spec: str | None, ov: Overrides) -> Session:
    if spec is None or spec == "":
        for name in DEFAULT_TARGETS:
            try:
                s = _try(name, ov)
            except GranuleMismatch:  # (ptlab tui --granule 64K: the first default written for it)
                continue
            if s is not None:
                return s
        raise UserError("tui: no default target is available")
    s = _try(spec, ov)
    if s is not None:
        return s
    kinds = "; ".join(f"{r.name} ({r.description})" for r in RESOLVERS)
    if Path(spec).suffix and not os.path.lexists(spec):
        raise UserError(f"tui: {shown(spec)}: no such file")
    raise UserError(f"tui: cannot open {shown(spec)!r}: not a known target (targets: {kinds})")


def _try(spec: str, ov: Overrides) -> Session | None:
    for r in RESOLVERS:
        s = r.resolve(spec, ov)
        if s is not None:
            return s
    return None


# --- shared helpers for resolvers ------------------------------------------------------------
def _check_names(ov: Overrides) -> None:
    """Fail early, with one line, on unknown profile / CPU / policy names."""
    from engine.arch.profiles import KernelProfileError, get_profile
    from engine.hw.cpus import load_cpu
    from engine.policy import PolicyError, load_policy

    try:
        if ov.kernel is not None:
            get_profile(ov.kernel)
        if ov.cpu is not None:
            load_cpu(ov.cpu)
        if ov.policy is not None:
            load_policy(ov.policy)
    except (KernelProfileError, PolicyError, ValueError) as e:
        raise UserError(f"tui: {e}") from None
    except Exception as e:  # CpuProfileError and friends
        raise UserError(f"tui: {e}") from None


def api_session(ops: list, granule: Any, kernel: str, cpu: str, policy: str | None, *, name: str,
                source: str = "") -> Session:
    """A Session over an ApiMachine (direct ptep calls), with an optional fold policy."""
    from engine.machine_kinds import machine_factory

    cfg = {"granule": str(granule), "kernel": kernel, "cpu": cpu, "policy": policy}
    return Session(machine_factory("api", cfg), ops, name=name, source=source,
                   meta={"machine": "api", "config": cfg})


# --- built-in resolvers ---------------------------------------------------------------------
def _example(spec: str, ov: Overrides) -> Session | None:
    if spec != "example":
        return None
    from engine.arch.profiles import get_profile
    from engine.granule import granule as to_granule
    from tui.examples import example_ops

    _check_names(ov)
    try:
        g = to_granule(ov.granule or "4K")
    except ValueError as e:
        raise UserError(f"tui: {e}") from None
    kernel = ov.kernel or "v7.0"
    ops = example_ops(g.name, get_profile(kernel).layout)
    return api_session(ops, g.name, kernel, ov.cpu or "neoverse-n1", ov.policy, name="example",
                       source="built-in example trace")


def _vector_file(spec: str, ov: Overrides) -> Session | None:
    path_s, index_s = spec, None
    head, sep, tail = spec.rpartition(":")
    if sep and head.endswith(".json"):
        path_s, index_s = head, tail
    if not path_s.endswith(".json"):
        return None
    path = Path(path_s)
    if not os.path.lexists(path_s):
        raise UserError(f"tui: {shown(path_s)}: no such file")
    try:
        index = int(index_s) if index_s is not None else 0
    except ValueError:
        raise UserError(f"tui: {spec}: trace index {index_s!r} is not a number") from None
    from engine.safeio import UnsafeFileError, read_user_text

    try:  # a regular file, bounded: never a FIFO, a device or a /proc file
        data = json.loads(read_user_text(path, MAX_VECTOR_FILE, "file"))
    except UnsafeFileError as e:
        raise UserError(f"tui: {e}") from None
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise UserError(f"tui: {shown(path_s)}: not readable JSON ({e})") from None
    if not isinstance(data, dict) or data.get("format") != "ptlab-ptep-vectors/1":
        raise UserError(f"tui: {path_s}: not a ptlab-ptep-vectors/1 file")
    traces = data.get("traces")
    if not isinstance(traces, list) or not traces:
        raise UserError(f"tui: {path_s}: has no traces")
    if not 0 <= index < len(traces):
        raise UserError(f"tui: {path_s}: trace {index} out of range (0..{len(traces) - 1})")
    trace = traces[index]
    from engine.granule import granule as to_granule
    from engine.ptep_machine import ops_from_vector_trace

    _check_names(ov)
    try:
        g = to_granule(trace["granule"])
        ops = ops_from_vector_trace(trace)
    except (KeyError, TypeError, ValueError) as e:
        raise UserError(f"tui: {path_s}: trace {index} is malformed ({e})") from None
    if ov.granule is not None:
        try:
            want = to_granule(ov.granule)
        except ValueError as e:
            raise UserError(f"tui: {e}") from None
        if want != g:
            raise UserError(f"tui: {path_s}:{index} is a {g.name} trace; its addresses fix the granule "
                            f"(--granule {ov.granule} cannot apply)")
    kernel = ov.kernel or trace.get("kernel", "v7.0")
    cpu = ov.cpu or trace.get("cpu", "neoverse-n1")
    name = f"{path.name}:{index}"
    return api_session(ops, g.name, kernel, cpu, ov.policy, name=name, source=str(path))


def _scenario(spec: str, ov: Overrides) -> Session | None:
    """A built-in scenario name or a .pts file, on the core-mm machine."""
    from engine.errors import ScenarioError
    from engine.scenario import builtin_names

    if spec not in builtin_names() and not spec.endswith(".pts"):
        return None
    if spec.endswith(".pts") and not os.path.lexists(spec):
        raise UserError(f"{shown(spec)}: no such file")
    _check_names(ov)
    try:
        if ov.granule:
            from engine.scenario import resolve

            scn = resolve(spec)
            check_granule(scn.name, scn.source, ov.granule)
        return scenario_session(spec, kernel=ov.kernel, granule=ov.granule, cpu=ov.cpu, policy=ov.policy)
    except ScenarioError as e:
        raise UserError(str(e)) from None


def scenario_session(target: str, *, kernel: str | None = None, granule: str | None = None,
                     cpu: str | None = None, policy: str | None = None, check: str | None = None) -> Session:
    """A Session running a scenario (built-in name or .pts file) on the core-mm
    machine. Raises ScenarioError for bad scenario text or settings. ``check``
    overrides when the invariant checker runs ("op", "end", "off")."""
    from engine.machine_kinds import machine_factory
    from engine.scenario import resolve

    scn = resolve(target)
    cfg = scn.config(kernel=kernel, granule=granule, cpu=cpu, policy=policy, check=check,
                     record=False).summary()
    make = machine_factory("scenario", cfg)
    return Session(make, scn.ops, name=scn.name, source=scn.source,
                   meta={"machine": "scenario", "config": cfg, "description": scn.description})


def _snapshot(spec: str, ov: Overrides) -> Session | None:
    if not spec.endswith(".ptsnap"):
        return None
    from tui.snapshot_files import SnapshotIOError, load_session

    _check_names(ov)
    try:
        return load_session(spec, kernel=ov.kernel, cpu=ov.cpu, policy=ov.policy, granule=ov.granule)
    except SnapshotIOError as e:
        raise UserError(str(e)) from None


register("scenario", "built-in scenario name or FILE.pts", _scenario)
register("snapshot", "FILE.ptsnap saved session", _snapshot)
register("example", "the built-in example ptep trace", _example)
register("vectors", "FILE.json[:TRACE] from a ptlab-ptep-vectors/1 file", _vector_file)
