# SPDX-License-Identifier: GPL-2.0-only
"""Fold policies: the decision "try to fold here?" as a plug-in.

The kernel tries to fold only from ``set_ptes(nr == 1)``, and only when the
entry just written is the last of a virtually and physically aligned block,
valid, not contiguous and not special (contpte_try_fold() in pgtable.h). The
fold itself (``__contpte_try_fold``: one folio covers the block, all entries
match modulo access/dirty, then contpte_convert) is never the policy's to
change -- a policy only decides *when to ask*.

A policy is a class with:

* ``name`` -- recorded in snapshots (code is never loaded from a snapshot);
* ``should_try_fold(arch, mm, addr, pte) -> bool`` -- called after every
  ``set_ptes(nr == 1)`` write with the value written;
* optionally ``scan(machine) -> iterable of (mm, addr)`` and
  ``scan_interval`` (ops between scans): blocks to try folding periodically,
  like a khugepaged for contpte.

User policies live in a Python file named on the command line as
``path/to/file.py:ClassName``.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from engine.pte import PTE_CONT, PTE_SPECIAL, PTE_VALID


class PolicyError(ValueError):
    pass


class FoldPolicy:
    name = "base"
    description = ""
    scan_interval = 0  # 0: no periodic scan

    def should_try_fold(self, arch: Any, mm: Any, addr: int, pte: int) -> bool:
        """Override: True to run __contpte_try_fold() for the entry just written."""
        return False

    def scan(self, machine: Any) -> Iterable[tuple[Any, int]]:
        return ()


def kernel_heuristic(arch: Any, addr: int, pte: int) -> bool:
    """contpte_try_fold()'s own test (arch/arm64/include/asm/pgtable.h)."""
    mask = arch.cont_ptes - 1
    return (((addr >> arch.page_shift) & mask) == mask
            and (arch.pte_pfn(pte) & mask) == mask
            and bool(pte & PTE_VALID) and not pte & (PTE_CONT | PTE_SPECIAL))


class MainlinePolicy(FoldPolicy):
    name = "mainline"
    description = "the kernel profile's own heuristic: last entry of an aligned block (none before seed-fold)"

    def should_try_fold(self, arch, mm, addr, pte):
        return arch.profile.auto_fold and kernel_heuristic(arch, addr, pte)


class NeverPolicy(FoldPolicy):
    name = "never"
    description = "never fold (blocks only get CONT from set_ptes(nr > 1))"

    def should_try_fold(self, arch, mm, addr, pte):
        return False


class AnyEntryPolicy(FoldPolicy):
    name = "any-entry"
    description = "try to fold on every single-entry write of a valid, non-special entry"

    def should_try_fold(self, arch, mm, addr, pte):
        return bool(pte & PTE_VALID) and not pte & (PTE_CONT | PTE_SPECIAL)


class ScanPolicy(MainlinePolicy):
    name = "scan"
    description = "mainline, plus a periodic scanner folding every eligible block (a contpte 'khugepaged')"
    scan_interval = 8

    def scan(self, machine):
        # Candidate blocks: fully populated with valid, non-CONT entries.
        arch = machine.arch
        n = arch.cont_ptes
        ps = arch.page_size
        for proc in machine.process_list():
            mm = proc.mm
            for key in sorted(mm.pt.tables):
                t = mm.pt.tables[key]
                base = key << arch.g.pmd_shift
                for i in range(0, len(t), n):
                    last = t[i + n - 1]
                    if last & PTE_VALID and not last & (PTE_CONT | PTE_SPECIAL) and t[i] & PTE_VALID:
                        yield mm, base + (i + n - 1) * ps


BUILTIN_POLICIES: dict[str, type[FoldPolicy]] = {
    p.name: p for p in (MainlinePolicy, NeverPolicy, AnyEntryPolicy, ScanPolicy)
}
ALIASES = {"kernel": "mainline", "default": "mainline", "any": "any-entry"}


def load_policy(spec: str | FoldPolicy | None) -> FoldPolicy:
    """A built-in name, ``file.py:Class``, or an instance."""
    if spec is None:
        return MainlinePolicy()
    if isinstance(spec, FoldPolicy) or (not isinstance(spec, str) and hasattr(spec, "should_try_fold")):
        return spec  # type: ignore[return-value]
    key = ALIASES.get(spec, spec)
    if key in BUILTIN_POLICIES:
        return BUILTIN_POLICIES[key]()
    if ":" in spec and spec.rsplit(":", 1)[0].endswith(".py"):
        return _load_user_policy(spec)
    raise PolicyError(f"unknown policy {spec!r} (built-in: {', '.join(BUILTIN_POLICIES)}; "
                      "or FILE.py:CLASS)")


def check_policy_spec(spec: str) -> None:
    """PolicyError unless spec names a built-in policy or has the form
    FILE.py:CLASS with FILE existing (nothing is imported)."""
    if ALIASES.get(spec, spec) in BUILTIN_POLICIES:
        return
    if ":" in spec and spec.rsplit(":", 1)[0].endswith(".py"):
        path_s, cls_name = spec.rsplit(":", 1)
        if not Path(path_s).is_file():
            raise PolicyError(f"policy file {path_s} does not exist")
        if not cls_name.isidentifier():
            raise PolicyError(f"policy class {cls_name!r} is not a Python name")
        return
    raise PolicyError(f"unknown policy {spec!r} (built-in: {', '.join(BUILTIN_POLICIES)}; "
                      "or FILE.py:CLASS)")


class PolicyTimeout(PolicyError):
    pass


class GuardedPolicy(FoldPolicy):
    """Wraps a user policy: its exceptions, nonsense answers and runaway loops
    become one clear PolicyError naming the policy and the call.

    The time limit is enforced with a per-thread trace function (works in the
    TUI's worker threads, where signals cannot be used); it only slows down
    the user's own code.
    """

    def __init__(self, inner: object, time_limit: float = 2.0):
        self.inner = inner
        self.name = getattr(inner, "name", type(inner).__name__)
        self.description = getattr(inner, "description", "user policy")
        self.scan_interval = int(getattr(inner, "scan_interval", 0) or 0)
        self.time_limit = time_limit

    def _call(self, what: str, fn, *args):
        deadline = time.monotonic() + self.time_limit
        counter = [0]

        def tracer(frame, event, arg):
            counter[0] += 1
            if counter[0] & 255 == 0 and time.monotonic() > deadline:
                raise PolicyTimeout(f"policy {self.name}: {what} ran for more than "
                                    f"{self.time_limit:g} s (runaway loop?)")
            return tracer

        old = sys.gettrace()
        sys.settrace(tracer)
        try:
            return fn(*args)
        except PolicyError:
            raise
        except Exception as e:
            raise PolicyError(f"policy {self.name}: {what} raised {type(e).__name__}: {e}") from None
        finally:
            sys.settrace(old)

    def should_try_fold(self, arch, mm, addr, pte):
        r = self._call(f"should_try_fold(addr={addr:#x})", self.inner.should_try_fold, arch, mm, addr, pte)
        if r is None or isinstance(r, bool) or (isinstance(r, int) and r in (0, 1)):
            return bool(r)
        raise PolicyError(f"policy {self.name}: should_try_fold(addr={addr:#x}) returned {r!r}, "
                          "expected True or False")

    def scan(self, machine):
        scan = getattr(self.inner, "scan", None)
        if scan is None:
            return []
        items = self._call("scan()", lambda: list(scan(machine) or ()))
        out = []
        for item in items:
            if (not isinstance(item, tuple) or len(item) != 2 or not isinstance(item[1], int)
                    or not hasattr(item[0], "pt")):
                raise PolicyError(f"policy {self.name}: scan() yielded {item!r}, expected (mm, addr)")
            out.append(item)
        return out


def _load_user_policy(spec: str) -> FoldPolicy:
    path_s, cls_name = spec.rsplit(":", 1)
    path = Path(path_s)
    if not path.is_file():
        raise PolicyError(f"policy file {path} does not exist")
    mod_name = f"ptlab_user_policy_{abs(hash(str(path.resolve())))}"
    try:
        sp = importlib.util.spec_from_file_location(mod_name, path)
        if sp is None or sp.loader is None:
            raise PolicyError(f"cannot load {path} as a Python module")
        mod = importlib.util.module_from_spec(sp)
        sys.modules[mod_name] = mod
        sp.loader.exec_module(mod)
    except PolicyError:
        raise
    except Exception as e:  # a user's file may raise anything at import
        raise PolicyError(f"{path}: error while importing: {type(e).__name__}: {e}") from None
    cls = getattr(mod, cls_name, None)
    if cls is None:
        raise PolicyError(f"{path} has no class {cls_name!r}")
    try:
        inst = cls()
    except Exception as e:
        raise PolicyError(f"{path}:{cls_name}() failed: {type(e).__name__}: {e}") from None
    if not callable(getattr(inst, "should_try_fold", None)):
        raise PolicyError(f"{path}:{cls_name} has no should_try_fold(arch, mm, addr, pte) method")
    guarded = GuardedPolicy(inst)
    if not isinstance(guarded.name, str) or not guarded.name:
        guarded.name = f"{path.name}:{cls_name}"
    return guarded
