# SPDX-License-Identifier: GPL-2.0-only
"""Test-suite wide settings.

Property tests are derandomized so the suite gives the same verdict on every
run (CI stays green or red for a reason). Set PTLAB_FUZZ=1 to explore with
fresh random examples and more of them.
"""

import os

from hypothesis import settings

settings.register_profile("ptlab", derandomize=True, database=None, deadline=None)
settings.register_profile("fuzz", max_examples=300, deadline=None)
settings.load_profile("fuzz" if os.environ.get("PTLAB_FUZZ") else "ptlab")
