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


class Exits:
    """sys.exit() from a policy must not end ptlab quietly."""

    def should_try_fold(self, arch, mm, addr, pte):
        raise SystemExit(0)


class WeirdAnswer:
    """An answer whose __bool__ and __repr__ raise."""

    class _Weird:
        def __bool__(self):
            raise RuntimeError("no truth")

        def __repr__(self):
            raise RuntimeError("no repr")

    def should_try_fold(self, arch, mm, addr, pte):
        return self._Weird()


class DeepRecursion:
    def should_try_fold(self, arch, mm, addr, pte):
        return self.should_try_fold(arch, mm, addr, pte)


class EndlessScan:
    """A scanner that never stops yielding (it would fill memory)."""

    scan_interval = 1

    def should_try_fold(self, arch, mm, addr, pte):
        return False

    def scan(self, machine):
        mm = machine.process_list()[0].mm
        while True:
            yield mm, 0


class ForeignScan:
    """A scanner that names an mm that is not the machine's."""

    scan_interval = 1

    def should_try_fold(self, arch, mm, addr, pte):
        return False

    def scan(self, machine):
        class Fake:
            pt = None

        return [(Fake(), 0x1000)]


class BadInterval:
    scan_interval = "often"

    def should_try_fold(self, arch, mm, addr, pte):
        return False


class NameRaises:
    @property
    def name(self):
        raise RuntimeError("no name")

    def should_try_fold(self, arch, mm, addr, pte):
        return False
