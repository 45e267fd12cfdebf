# SPDX-License-Identifier: GPL-2.0-only
"""User key bindings: a small TOML file that rebinds actions by id.

``$PTLAB_KEYMAP`` names the file; otherwise ``$XDG_CONFIG_HOME/ptlab/keymap.toml``
(``~/.config/ptlab/keymap.toml``) is read if it exists::

    [keys]
    step = "n,space"        # ids are those of tui.actions.MAIN_ACTIONS
    back = "b,backspace"
    quit = "q,ctrl+q"

Unknown ids or malformed files never stop the app: :func:`load_keymap`
returns the bindings it could read plus a list of warnings to show.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from tui.actions import BY_ID


def default_path() -> Path:
    env = os.environ.get("PTLAB_KEYMAP")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "ptlab" / "keymap.toml"


def parse_keymap(text: str, source: str = "keymap") -> tuple[dict[str, str], list[str]]:
    """(Textual keymap: binding id -> keys, warnings)."""
    warnings: list[str] = []
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        return {}, [f"{source}: not valid TOML ({e}); default keys used"]
    keys = data.get("keys", {})
    if not isinstance(keys, dict):
        return {}, [f"{source}: [keys] must be a table; default keys used"]
    out: dict[str, str] = {}
    for action_id, value in keys.items():
        spec = BY_ID.get(action_id)
        if spec is None:
            warnings.append(f"{source}: unknown action {action_id!r} (known: {', '.join(sorted(BY_ID))})")
            continue
        if not isinstance(value, str) or not value.strip():
            warnings.append(f"{source}: keys for {action_id!r} must be a non-empty string")
            continue
        out[spec.binding_id] = ",".join(k.strip() for k in value.split(",") if k.strip())
    return out, warnings


def load_keymap(path: Path | None = None) -> tuple[dict[str, str], list[str]]:
    path = path or default_path()
    try:
        text = path.read_text()
    except FileNotFoundError:
        if os.environ.get("PTLAB_KEYMAP"):
            return {}, [f"keymap {path}: no such file; default keys used"]
        return {}, []
    except OSError as e:
        return {}, [f"keymap {path}: {e}; default keys used"]
    return parse_keymap(text, str(path))
