# SPDX-License-Identifier: GPL-2.0-only
"""Machine kinds: how to build a machine from a session's plain configuration.

A session records in ``session.meta`` which kind of machine it runs
(``"scenario"``: the core-mm Machine; ``"api"``: direct ptep calls) and that
machine's configuration as plain data. This registry turns the pair back into
a machine factory -- for a snapshot being opened, or for the same ops re-run
under another kernel profile, CPU or fold policy (:func:`reopen`, the one way to
do that: the settings it changes are the ones session.meta records).

Every factory makes machines of the machine contract (engine.contract); the
registry's types make mypy check that each machine kind implements all of it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine.arch.profiles import DEFAULT_KERNEL
from engine.capture.session import _empty
from engine.contract import MachineContract, MachineFactory
from engine.policy import load_policy
from engine.ptep_machine import ApiMachine
from engine.scenario_machine import Machine, MachineConfig
from engine.session import Session

KindFactory = Callable[[dict[str, Any]], MachineFactory]
_KINDS: dict[str, KindFactory] = {}


def register_machine_kind(name: str, factory: KindFactory) -> None:
    """``factory(config) -> make_machine`` where config is session.meta["config"]."""
    _KINDS[name] = factory


def machine_factory(kind: str, config: dict[str, Any]) -> MachineFactory:
    try:
        factory = _KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown machine kind {kind!r} (known: {', '.join(sorted(_KINDS))})") from None
    return factory(dict(config))


def _api(cfg: dict[str, Any]) -> MachineFactory:
    pol = cfg.get("policy")
    # loaded once, now (a bad name fails here), and shared by every machine made
    policy = load_policy(pol) if pol not in (None, "", "mainline") else None

    def make() -> ApiMachine:
        return ApiMachine(cfg.get("granule", "4K"), cfg.get("kernel", DEFAULT_KERNEL),
                          cfg.get("cpu", "neoverse-n1"), policy)

    return make


def _scenario(cfg: dict[str, Any]) -> MachineFactory:
    fields = dict(cfg)
    fields["record"] = False
    Machine(MachineConfig(**fields))  # fail now, with the config's own error, not on first use
    return lambda: Machine(MachineConfig(**fields))


def _scenario_from(cfg: dict[str, Any]) -> MachineFactory:
    """A scenario run on top of a saved state (ptlab run --from): the machine
    is built empty from its configuration; the session layer restores the
    starting state (checkpoint 0, checked against cfg["start"]["digest"])."""
    return _scenario({k: v for k, v in cfg.items() if k != "start"})


def _capture(cfg: dict[str, Any]) -> MachineFactory:
    return _empty(cfg)


register_machine_kind("api", _api)
register_machine_kind("capture", _capture)
register_machine_kind("scenario", _scenario)
register_machine_kind("scenario-from", _scenario_from)

# kinds whose sessions start from a state of their own (their checkpoint 0), not from an empty machine
STARTED_KINDS = ("capture", "scenario-from")


def reopen(session: Session, **overrides: Any) -> Session:
    """The same ops as ``session`` under overridden settings (kernel, cpu,
    policy, granule ...), as a fresh session from op 0. ValueError (one line)
    when the session does not record how its machine was made, or when a
    setting cannot change for it."""
    meta = session.meta
    if "machine" not in meta:
        raise ValueError("this session does not record how its machine was made")
    cfg = dict(meta.get("config", {}))
    changes = {k: v for k, v in overrides.items() if v is not None}
    cfg.update(changes)
    label = ", ".join(f"{k} {v}" for k, v in changes.items())
    name = f"{session.name} [{label}]" if label else session.name
    make = machine_factory(meta["machine"], cfg)
    if meta["machine"] in STARTED_KINDS:
        # the same start, not an empty machine; its descriptors are in its kernel's layout
        # and granule, so only the CPU and the policy can change
        for key in ("kernel", "granule"):
            if key in changes and str(changes[key]) != str(meta.get("config", {}).get(key)):
                raise ValueError(f"this session starts from a captured or saved state built for its own "
                                 f"{key}; only the CPU profile and the fold policy can change")
        start = session.checkpoint(0)
        empty = make

        def make() -> MachineContract:
            m = empty()
            m.restore(start)
            return m

    return Session(make, session.ops, name=name, source=session.source,
                   meta={"machine": meta["machine"], "config": cfg})
