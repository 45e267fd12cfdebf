# SPDX-License-Identifier: GPL-2.0-only
"""Real inputs: capture a live process and turn it into engine state.

* :func:`capture_process` (``live.py``) reads /proc into a plain
  :class:`Capture` (``model.py``) -- no engine state;
* :func:`build` (``build.py``) maps a capture into a :class:`~engine.Simulator`
  through the ptep API, on any granule;
* ``thpmaps.py`` computes the counters of the kernel's tools/mm/thpmaps for a
  capture and sets the engine's folded blocks beside them.
"""

from engine.capture.live import capture_process
from engine.capture.model import Capture, CapturedVMA, CaptureError, ProcessGone

__all__ = ["Capture", "CapturedVMA", "CaptureError", "ProcessGone", "capture_process"]
