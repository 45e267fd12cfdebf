# SPDX-License-Identifier: GPL-2.0-only
"""The session header stored at the start of every ``.ptsnap`` file."""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from typing import Any

TOOL = "ptlab"
_CREATED_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\Z")


def _tool_version() -> str:
    try:
        from engine import __version__  # here: the container does not import the engine
    except Exception:  # noqa: BLE001 - the container must not depend on the engine importing
        return "unknown"
    return str(__version__)


def format_created(seconds: float) -> str:
    """UTC time as ``YYYY-MM-DDTHH:MM:SSZ`` (always 20 characters)."""
    t = time.gmtime(int(seconds))
    return (f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T"
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}Z")


def created_now() -> str:
    """The creation time to record: now, or ``$SOURCE_DATE_EPOCH`` when set (reproducible builds)."""
    sde = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if sde.isdigit():
        return format_created(int(sde))
    return format_created(time.time())


def check_created(value: str) -> str:
    if not isinstance(value, str) or not _CREATED_RE.match(value):
        raise ValueError(f"created must look like 2025-01-31T12:00:00Z, not {value!r}")
    return value


@dataclass
class SnapshotHeader:
    """What a session was run with; enough to re-create its machine and re-run it.

    ``created`` is the only field that depends on when the file was written
    (UTC, ``YYYY-MM-DDTHH:MM:SSZ``, fixed width). The writer fills it in when it
    is empty; pass a value (or set ``$SOURCE_DATE_EPOCH``) to make a save
    byte-for-byte reproducible. ``policy`` is a *name* (a built-in, or the
    ``FILE.py:CLASS`` the user gave); code is never stored. ``extra`` holds
    anything else the session layer needs, as plain data (str keys; lists,
    maps, str, int, float, bool, None, bytes).
    """

    kernel: str = "v7.0"
    granule: str = "4K"
    cpu: str = "neoverse-n1"
    policy: str = "mainline"
    seed: int = 1
    scenario_name: str = ""
    scenario_source: str = ""
    created: str = ""
    tool_version: str = field(default_factory=_tool_version)
    extra: dict[str, Any] = field(default_factory=dict)
    unknown: dict[str, Any] = field(default_factory=dict, repr=False)  # fields from a newer writer, kept

    def to_plain(self) -> dict[str, Any]:
        """The header map as stored in format v3 (``created`` last)."""
        d: dict[str, Any] = {
            "tool": TOOL,
            "tool_version": self.tool_version,
            "kernel": self.kernel,
            "granule": self.granule,
            "cpu": self.cpu,
            "policy": self.policy,
            "seed": self.seed,
            "scenario": {"name": self.scenario_name, "source": self.scenario_source},
            "extra": self.extra,
        }
        for k, v in self.unknown.items():
            d.setdefault(k, v)
        d["created"] = self.created
        return d

    @classmethod
    def from_plain(cls, d: Any) -> SnapshotHeader:
        """Parse a (current-version) header map; ValueError names the bad field."""
        if not isinstance(d, dict):
            raise ValueError("the header is not a map")
        if d.get("tool") != TOOL:
            raise ValueError(f"the header's tool is {d.get('tool')!r}, not {TOOL!r}")
        out = {}
        for key in ("tool_version", "kernel", "granule", "cpu", "policy", "created"):
            v = d.get(key)
            if not isinstance(v, str):
                raise ValueError(f"header field {key!r} must be a string")
            out[key] = v
        check_created(out["created"])
        seed = d.get("seed")
        if type(seed) is not int:
            raise ValueError("header field 'seed' must be an integer")
        sc = d.get("scenario")
        if not isinstance(sc, dict) or not all(isinstance(sc.get(k), str) for k in ("name", "source")):
            raise ValueError("header field 'scenario' must map 'name' and 'source' to strings")
        extra = d.get("extra", {})
        if not isinstance(extra, dict):
            raise ValueError("header field 'extra' must be a map")
        known = {"tool", "tool_version", "kernel", "granule", "cpu", "policy", "seed", "scenario", "extra",
                 "created"}
        return cls(kernel=out["kernel"], granule=out["granule"], cpu=out["cpu"], policy=out["policy"],
                   seed=seed, scenario_name=sc["name"], scenario_source=sc["source"], created=out["created"],
                   tool_version=out["tool_version"], extra=extra,
                   unknown={k: v for k, v in d.items() if k not in known})
