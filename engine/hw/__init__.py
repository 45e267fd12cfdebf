# SPDX-License-Identifier: GPL-2.0-only
"""Hardware model: CPU profiles, the TLB and the table walker."""
