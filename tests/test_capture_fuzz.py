# SPDX-License-Identifier: GPL-2.0-only
"""Live capture on a fake /proc with random faults (issue #9, item 6), seeded:
mangled lines in maps and smaps, garbage pagemap and kpageflags words, files
that are unreadable, a process that exits after a random number of reads,
mappings that keep changing, with and without PAGEMAP_SCAN and --partial.

Each capture either gives a Capture that passes its own consistency check and
builds into a machine (and a comparison), or raises CaptureError with one line.
"""

from __future__ import annotations

import os
import random

from capture_fakes import FakeReader
from crafted_process import crafted

from engine.capture.build import build
from engine.capture.live import capture_process
from engine.capture.model import CaptureError
from engine.capture.thpmaps import compare

CASES = int(os.environ.get("PTLAB_FUZZ_CAPTURE_CASES", 300))
SEED = int(os.environ.get("PTLAB_FUZZ_SEED", 20250131))


def _mangle(text: str, rnd: random.Random) -> str:
    lines = text.splitlines(keepends=True)
    for _ in range(rnd.randrange(1, 4)):
        if not lines:
            break
        i = rnd.randrange(len(lines))
        line = lines[i]
        r = rnd.random()
        if r < 0.25 and line:
            j = rnd.randrange(len(line))
            junk = rnd.choice(["", "x", "-", " ", "\x00", "ffffffffffffffffff", "\n"])
            lines[i] = line[:j] + junk + line[j + 1:]
        elif r < 0.45:
            lines[i] = line[: rnd.randrange(len(line) + 1)]
        elif r < 0.6:
            lines.insert(i, line)
        elif r < 0.75:
            del lines[i]
        elif r < 0.9:
            lines[i] = rnd.choice(["garbage\n", "0-0 ---- 0 0:0 0\n", "Rss: lots kB\n", "Size: -4 kB\n",
                                   "7fff0000-7ffe0000 rw-p 0 00:00 0\n", "AnonHugePages: 99999999999 kB\n"])
        else:
            lines[i], lines[-1] = lines[-1], lines[i]
    return "".join(lines)


class FuzzReader(FakeReader):
    def __init__(self, rnd: random.Random, **kw):  # type: ignore[no-untyped-def]
        super().__init__(crafted(), **kw)
        self.rnd = random.Random(rnd.randrange(1 << 30))
        self.mangle_maps = rnd.random() < 0.3
        self.mangle_smaps = rnd.random() < 0.3
        self.garbage = rnd.choice([0.0, 0.0, 0.01, 0.2])
        for k in list(self.proc.kflags):
            if rnd.random() < self.garbage:
                self.proc.kflags[k] = rnd.getrandbits(64)

    def read_text(self, path: str) -> str:
        text = super().read_text(path)
        if (path.endswith("/maps") and self.mangle_maps) or (path.endswith("/smaps") and self.mangle_smaps):
            text = _mangle(text, self.rnd)
        return text

    def pagemap_hook(self, vfn: int, value: int) -> int:
        if self.garbage and self.rnd.random() < self.garbage:
            return self.rnd.choice([self.rnd.getrandbits(64), value ^ (1 << self.rnd.randrange(64)), 0])
        return value


def test_random_faults_in_proc(report_line):
    rnd = random.Random(SEED)
    outcomes = {"captured": 0, "partial": 0, "error": 0}
    for case in range(CASES):
        kw = {"deny": tuple(d for d in ("pagemap", "/smaps", "/maps", "kpageflags", "kpagecount")
                            if rnd.random() < 0.06),
              "die_after": rnd.choice([None, None, None, 0, 1, 2, 3, 5]),
              "scan": rnd.random() < 0.5, "maps_changes": rnd.choice([0, 0, 1, 2, 5])}
        partial = rnd.random() < 0.5
        reader = FuzzReader(rnd, **kw)
        where = f"case {case}: {kw}, partial={partial}, maps/smaps mangled {reader.mangle_maps}/" \
                f"{reader.mangle_smaps}, garbage {reader.garbage}"
        try:
            cap = capture_process(4242, reader=reader, partial=partial)
        except CaptureError as e:
            assert "\n" not in str(e) and str(e), where
            outcomes["error"] += 1
            continue
        cap.check()
        compare(build(cap))
        outcomes["partial" if any("exited during" in w for w in cap.warnings) else "captured"] += 1
    report_line(f"capture fuzz: {CASES} captures of a fake /proc with random faults (seed {SEED}): "
                f"{outcomes['captured']} complete, {outcomes['partial']} partial, "
                f"{outcomes['error']} one-line CaptureError, 0 failures")


def test_damaged_maps_text_is_one_clear_error():
    """Found by the fuzzer: a repeated or out-of-order VMA line ended in the capture's own
    consistency check (a ValueError, i.e. an internal error) instead of a CaptureError."""
    import pytest

    class Repeated(FakeReader):
        def read_text(self, path: str) -> str:
            text = super().read_text(path)
            lines = text.splitlines(keepends=True)
            head = next(i for i, line in enumerate(lines) if "-" in line.split(" ")[0])
            return "".join(lines[: head + 1] + lines[head:])

    with pytest.raises(CaptureError, match=r"^/proc/4242/smaps: line 2: VMA 0x10000000-0x10400000 is empty, "
                                           r"out of order or overlaps the one before \(damaged text\)$"):
        capture_process(4242, reader=Repeated(crafted()))
