# SPDX-License-Identifier: GPL-2.0-only
"""A policy file whose import never finishes."""

while True:
    pass
