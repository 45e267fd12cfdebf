# SPDX-License-Identifier: GPL-2.0-only
"""Write engine/recorder.py, the recorder interface, from engine.events.FIELDS.

    python scripts/gen_recorder.py          # after adding or changing a kind in FIELDS
    python scripts/gen_recorder.py --check  # exit 1 if the file is out of date
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _placeholder() -> types.ModuleType:
    """An engine.recorder that engine.events can import whatever the file holds:
    the file is what this script writes, and a change to the generator can leave
    it too old (or broken) for engine.events to import."""
    mod = types.ModuleType("engine.recorder")
    ns: dict[str, object] = {}
    exec("class Recorder:\n    __slots__ = ()\n"  # noqa: S102 - our own source
         "class RecordKinds(Recorder):\n    __slots__ = ()\n"
         "class Counters(Recorder):\n    __slots__ = ()\n"
         "class CountKinds(Counters):\n    __slots__ = ()\n"
         "COUNT_SLOTS = ()\n", ns)
    mod.__dict__.update(ns)
    return mod


def main(argv: list[str]) -> int:
    if argv not in ([], ["--check"]):
        print(__doc__)
        return 2
    sys.modules["engine.recorder"] = _placeholder()
    from engine.events import RECORDER_PATH, recorder_source

    text = recorder_source()
    if argv == ["--check"]:
        if RECORDER_PATH.read_text() != text:
            print(f"{RECORDER_PATH} is out of date: run python scripts/gen_recorder.py")
            return 1
        return 0
    RECORDER_PATH.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
