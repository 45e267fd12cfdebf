# SPDX-License-Identifier: GPL-2.0-only
"""A policy file that calls sys.exit() when imported."""

import sys

sys.exit(3)
