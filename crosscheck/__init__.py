# SPDX-License-Identifier: GPL-2.0-only
"""Real arm64 kernels beside the engine: fetch them (setup), boot them (guest), compare.

Only the CLI imports this package; it imports ``engine`` and never the other way round.
"""
