# SPDX-License-Identifier: GPL-2.0-only
"""tui/compat.py refuses a Textual whose patched methods changed, loudly and by name.

(The bugs the patches work around are reproduced in tests/test_tui_monkey.py.)
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import textual
from textual.screen import Screen

import tui.app  # noqa: F401 - applies the patches, as the app does
from tui import compat
from tui.compat import TextualChanged, require


def test_every_patch_is_applied():
    assert compat._applied
    assert Screen.dismiss.__qualname__ == "patch_textual.<locals>._dismiss"
    assert Screen._forward_event.__qualname__ == "patch_textual.<locals>._forward_event"


class Old:
    def method(self, event):  # type: ignore[no-untyped-def]
        return self.region, event

    @classmethod
    def make(cls):  # type: ignore[no-untyped-def]
        return cls()


def test_the_shape_a_patch_was_written_for_passes():
    assert require(Old, "method", ("self", "event"), reads=("region",)) is Old.method
    assert isinstance(require(Old, "make", ("cls",))(), Old)


@pytest.mark.parametrize("name,params,reads,message", [
    ("gone", ("self",), (), r"Textual [\d.]+: Old\.gone is gone"),
    ("method", ("self", "message"), (), r"Old\.method takes \(self, event\), the patch was written for "
                                          r"\(self, message\)"),
    ("method", ("self", "event"), ("region", "_select_state"), r"Old\.method no longer uses _select_state"),
])
def test_a_changed_method_is_an_import_error_naming_it(name, params, reads, message):
    with pytest.raises(TextualChanged, match=message) as e:
        require(Old, name, params, reads)
    assert isinstance(e.value, ImportError) and str(e.value).startswith("tui/compat.py: ")


def test_a_textual_without_a_patched_method_fails_at_import_with_nothing_patched():
    # a fresh interpreter: in this one the patches are applied already
    code = (
        "from textual.command import CommandPalette\n"
        "from textual.screen import Screen\n"
        "del CommandPalette._watch__list_visible  # as in a Textual that renamed it\n"
        "dismiss = Screen.dismiss\n"
        "try:\n"
        "    import tui.app\n"
        "except ImportError as e:\n"
        "    print(type(e).__name__, e)\n"
        "    print('unpatched' if Screen.dismiss is dismiss else 'half patched')\n")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.splitlines() == [
        f"TextualChanged tui/compat.py: Textual {textual.__version__}: CommandPalette._watch__list_visible "
        "is gone (or not a plain function); check whether the bug it patches is still there and update or "
        "drop the patch",
        "unpatched"]
