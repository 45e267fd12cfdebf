# SPDX-License-Identifier: GPL-2.0-only
"""Misbehaving policies for the hardening tests."""


class Raises:
    def should_try_fold(self, arch, mm, addr, pte):
        raise KeyError("boom")


class Nonsense:
    def should_try_fold(self, arch, mm, addr, pte):
        return "yes please"


class Runaway:
    def should_try_fold(self, arch, mm, addr, pte):
        while True:
            pass
