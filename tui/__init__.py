# SPDX-License-Identifier: GPL-2.0-only
"""ptlab's command line and Textual user interface."""
