# SPDX-License-Identifier: GPL-2.0-only
"""Write engine/recorder.py, the recorder interface, from engine.events.FIELDS.

    python scripts/gen_recorder.py          # after adding or changing a kind in FIELDS
    python scripts/gen_recorder.py --check  # exit 1 if the file is out of date
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.events import RECORDER_PATH, recorder_source  # noqa: E402


def main(argv: list[str]) -> int:
    text = recorder_source()
    if argv == ["--check"]:
        if RECORDER_PATH.read_text() != text:
            print(f"{RECORDER_PATH} is out of date: run python scripts/gen_recorder.py")
            return 1
        return 0
    if argv:
        print(__doc__)
        return 2
    RECORDER_PATH.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
