# SPDX-License-Identifier: GPL-2.0-only
"""Page tables, address-space handles and the folio registry."""
