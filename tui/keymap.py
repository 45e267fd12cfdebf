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
    from engine.hw.cpus import parse_toml

    try:
        data = parse_toml(text)  # bounded nesting: never a RecursionError
    except ValueError as e:
        return {}, [f"{source}: not valid TOML ({str(e).removeprefix('invalid TOML: ')}); default keys used"]
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
    from engine.safeio import UnsafeFileError, read_user_text, shown

    explicit = bool(os.environ.get("PTLAB_KEYMAP"))
    path = path or default_path()
    if not explicit and not os.path.lexists(path):
        return {}, []
    try:  # a regular file of at most 1 MiB: never a FIFO, a device or /proc/kmsg
        text = read_user_text(path, MAX_KEYMAP_BYTES, "keymap")
    except UnsafeFileError as e:
        return {}, [f"keymap {e}; default keys used"]
    return parse_keymap(text, shown(path))


MAX_KEYMAP_BYTES = 1 << 20
