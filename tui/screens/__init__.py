# SPDX-License-Identifier: GPL-2.0-only
"""Screens and dialogs of the ptlab TUI."""
