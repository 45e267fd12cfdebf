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

import gc
import hashlib
import importlib.util
import os
import sys
import sysconfig
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, TypeVar

from engine.arch import Arch
from engine.pte import PTE_CONT, PTE_SPECIAL, PTE_VALID
from engine.safeio import UnsafeFileError, read_user_file
from engine.state.mmstruct import MMStruct

if TYPE_CHECKING:  # (the machine is built above this module: for annotations only)
    from engine.contract import MachineContract

T = TypeVar("T")


class PolicyError(ValueError):
    pass


class FoldPolicy:
    name = "base"
    description = ""
    scan_interval = 0  # 0: no periodic scan

    def should_try_fold(self, arch: Arch, mm: MMStruct, addr: int, pte: int) -> bool:
        """Override: True to run __contpte_try_fold() for the entry just written."""
        return False

    def scan(self, machine: MachineContract) -> Iterable[tuple[MMStruct, int]]:
        return ()


def kernel_heuristic(arch: Arch, addr: int, pte: int) -> bool:
    """contpte_try_fold()'s own test (arch/arm64/include/asm/pgtable.h)."""
    mask = arch.cont_ptes - 1
    return (((addr >> arch.page_shift) & mask) == mask
            and (arch.pte_pfn(pte) & mask) == mask
            and bool(pte & PTE_VALID) and not pte & (PTE_CONT | PTE_SPECIAL))


class MainlinePolicy(FoldPolicy):
    name = "mainline"
    description = "the kernel profile's own heuristic: last entry of an aligned block (none before seed-fold)"

    def should_try_fold(self, arch: Arch, mm: MMStruct, addr: int, pte: int) -> bool:
        return arch.profile.auto_fold and kernel_heuristic(arch, addr, pte)


class NeverPolicy(FoldPolicy):
    name = "never"
    description = "never fold (blocks only get CONT from set_ptes(nr > 1))"

    def should_try_fold(self, arch: Arch, mm: MMStruct, addr: int, pte: int) -> bool:
        return False


class AnyEntryPolicy(FoldPolicy):
    name = "any-entry"
    description = "try to fold on every single-entry write of a valid, non-special entry"

    def should_try_fold(self, arch: Arch, mm: MMStruct, addr: int, pte: int) -> bool:
        return bool(pte & PTE_VALID) and not pte & (PTE_CONT | PTE_SPECIAL)


class ScanPolicy(MainlinePolicy):
    name = "scan"
    description = "mainline, plus a periodic scanner folding every eligible block (a contpte 'khugepaged')"
    scan_interval = 8

    def scan(self, machine: MachineContract) -> Iterable[tuple[MMStruct, int]]:
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
        return spec  # (a duck-typed policy object, with should_try_fold, is used as it is)
    key = ALIASES.get(spec, spec)
    if key in BUILTIN_POLICIES:
        return BUILTIN_POLICIES[key]()
    if ":" in spec and spec.rsplit(":", 1)[0].endswith(".py"):
        return _load_user_policy(spec, policy_time_limit())
    raise PolicyError(f"unknown policy {spec!r} (built-in: {', '.join(BUILTIN_POLICIES)}; "
                      "or FILE.py:CLASS)")


DEFAULT_TIME_LIMIT = 2.0


def policy_time_limit() -> float:
    """Seconds a user policy's call may take: $PTLAB_POLICY_TIME_LIMIT, default 2."""
    text = os.environ.get("PTLAB_POLICY_TIME_LIMIT", "")
    try:
        v = float(text) if text else DEFAULT_TIME_LIMIT
    except ValueError:
        raise PolicyError(f"PTLAB_POLICY_TIME_LIMIT={text!r} is not a number of seconds") from None
    if not 0 < v <= 3600:
        raise PolicyError(f"PTLAB_POLICY_TIME_LIMIT={text!r} must be between 0 and 3600 seconds")
    return v


def check_policy_spec(spec: str) -> None:
    """PolicyError unless spec names a built-in policy or has the form
    FILE.py:CLASS with FILE existing (nothing is imported)."""
    if ALIASES.get(spec, spec) in BUILTIN_POLICIES:
        return
    if ":" in spec and spec.rsplit(":", 1)[0].endswith(".py"):
        path_s, cls_name = spec.rsplit(":", 1)
        _policy_file_problem(path_s)
        if not cls_name.isidentifier():
            raise PolicyError(f"policy class {cls_name!r} is not a Python name")
        return
    raise PolicyError(f"unknown policy {spec!r} (built-in: {', '.join(BUILTIN_POLICIES)}; "
                      "or FILE.py:CLASS)")


class PolicyTimeout(PolicyError):
    pass


# The time limit is raised only from a frame of the user's own code: the tracer
# also sees the interpreter's garbage-collection and weakref callbacks (the
# standard library's, hypothesis's gc_callback) that run in the middle of it,
# and an exception raised there is "unraisable": lost, with a warning, and
# the runaway loop goes on (seen on a loaded machine in test_policy_failures).
_NOT_THE_USERS = tuple(sorted({p for p in (sys.prefix, sys.base_prefix, sys.exec_prefix,
                                           sys.base_exec_prefix, *sysconfig.get_paths().values())
                               if p} | {"<frozen"}))


def _in_gc_callback(frame) -> bool:  # type: ignore[no-untyped-def]
    """Is this frame (or one of its callers) a gc.callbacks function? An
    exception raised there is unraisable, whatever the deadline says."""
    codes = {getattr(cb, "__code__", None) for cb in gc.callbacks}
    codes.discard(None)
    depth = 0
    while frame is not None and depth < 32:
        if frame.f_code in codes:
            return True
        frame, depth = frame.f_back, depth + 1
    return False


def _describe(value: object, limit: int = 60) -> str:
    """repr() of a user's value for an error message: short, one line, and
    never raising (a user's __repr__ may)."""
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001
        text = f"<{type(value).__name__} object>"
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


def _guarded(owner: str, what: str, time_limit: float, fn: Callable[..., T], *args: Any) -> T:
    """fn(*args) under a time limit; anything it raises (SystemExit included,
    not KeyboardInterrupt) becomes one PolicyError naming ``owner`` and ``what``."""
    deadline = time.monotonic() + time_limit
    counter = [0]

    def tracer(frame: FrameType, event: str, arg: Any) -> Any:  # sys.settrace's trace function
        counter[0] += 1
        if counter[0] & 255 == 0 and (now := time.monotonic()) > deadline and (
                not frame.f_code.co_filename.startswith(_NOT_THE_USERS)
                or now > deadline + time_limit) and not _in_gc_callback(frame):
            # (the second test: a policy living in site-packages must not hang either)
            raise PolicyTimeout(f"{owner}: {what} ran for more than {time_limit:g} s (runaway loop?)")
        return tracer

    old = sys.gettrace()
    sys.settrace(tracer)
    try:
        return fn(*args)
    except (PolicyError, KeyboardInterrupt):
        raise
    except BaseException as e:  # noqa: BLE001 - a user's code: SystemExit, GeneratorExit ... too
        try:
            msg = " ".join(str(e).split())[:200]
        except Exception:  # noqa: BLE001 - its __str__ may raise too
            msg = "(no message)"
        raise PolicyError(f"{owner}: {what} raised {type(e).__name__}: {msg}") from None
    finally:
        sys.settrace(old)


class GuardedPolicy(FoldPolicy):
    """Wraps a user policy: its exceptions, nonsense answers and runaway loops
    become one clear PolicyError naming the policy and the call.

    The time limit is enforced with a per-thread trace function (works in the
    TUI's worker threads, where signals cannot be used); it only slows down
    the user's own code. (Code stuck inside one long C call -- a huge integer
    power, a blocking read -- is out of its reach; Ctrl-C still stops it.)
    """

    MAX_SCAN_ITEMS = 1 << 20  # candidates one scan() may yield

    def __init__(self, inner: object, time_limit: float = DEFAULT_TIME_LIMIT):
        self.inner: Any = inner  # the user's object: read only through _attr / _call
        self.time_limit = time_limit
        self.name = type(inner).__name__
        name = self._attr("name", self.name)
        self.name = name if isinstance(name, str) and name.strip() and len(name) <= 80 else self.name
        desc = self._attr("description", "user policy")
        self.description = desc if isinstance(desc, str) else "user policy"
        interval = self._attr("scan_interval", 0)
        if interval is None or interval is False:
            interval = 0
        if isinstance(interval, bool) or not isinstance(interval, int) or not 0 <= interval <= 1 << 32:
            raise PolicyError(f"policy {self.name}: scan_interval must be a whole number of ops (0: never), "
                              f"not {_describe(interval)}")
        self.scan_interval = interval

    def _attr(self, name: str, default: object) -> object:
        return _guarded(f"policy {self.name}", f"reading .{name}", self.time_limit,
                        getattr, self.inner, name, default)

    def _call(self, what: str, fn: Callable[..., T], *args: Any) -> T:
        return _guarded(f"policy {self.name}", what, self.time_limit, fn, *args)

    def should_try_fold(self, arch: Arch, mm: MMStruct, addr: int, pte: int) -> bool:
        r: object = self._call(f"should_try_fold(addr={addr:#x})", self.inner.should_try_fold,
                               arch, mm, addr, pte)
        if r is None or r is True or r is False or (type(r) is int and r in (0, 1)):
            return bool(r)
        raise PolicyError(f"policy {self.name}: should_try_fold(addr={addr:#x}) returned {_describe(r)}, "
                          "expected True or False")

    def scan(self, machine: MachineContract) -> Iterable[tuple[MMStruct, int]]:
        scan = self._attr("scan", None)
        if scan is None:
            return []
        if not callable(scan):
            raise PolicyError(f"policy {self.name}: scan is not a method")
        limit = self.MAX_SCAN_ITEMS

        def collect() -> list[object]:
            items = []
            for item in scan(machine) or ():
                items.append(item)
                if len(items) > limit:
                    raise PolicyError(f"policy {self.name}: scan() yielded more than {limit:,} candidates")
            return items

        items = self._call("scan()", collect)
        out = []
        for item in items:
            if (type(item) is not tuple or len(item) != 2 or type(item[1]) is not int
                    or not hasattr(item[0], "pt")):
                raise PolicyError(f"policy {self.name}: scan() yielded {_describe(item)}, "
                                  "expected (mm, addr)")
            out.append(item)
        return out


MAX_POLICY_BYTES = 4 << 20


def _policy_file_problem(path_s: str) -> bytes:
    """The policy file's source, or PolicyError: only a regular file, bounded
    (never a FIFO, a device or a /proc file; an existing FIFO is not 'missing')."""
    try:
        return read_user_file(path_s, MAX_POLICY_BYTES, "policy file")
    except UnsafeFileError as e:
        msg = str(e)
        if msg.endswith("no such policy file"):
            name = msg.removesuffix(": no such policy file")
            raise PolicyError(f"policy file {name} does not exist") from None
        raise PolicyError(msg) from None


def _load_user_policy(spec: str, time_limit: float = DEFAULT_TIME_LIMIT) -> FoldPolicy:
    path_s, cls_name = spec.rsplit(":", 1)
    path = Path(path_s)
    source = _policy_file_problem(path_s)  # the bytes executed are the bytes checked
    key = hashlib.blake2b(str(path.resolve()).encode(), digest_size=8).hexdigest()
    mod_name = f"ptlab_user_policy_{key}"
    sp = importlib.util.spec_from_file_location(mod_name, path)
    if sp is None or sp.loader is None:
        raise PolicyError(f"cannot load {path} as a Python module")
    mod = importlib.util.module_from_spec(sp)
    sys.modules[mod_name] = mod

    def run_module() -> None:
        exec(compile(source, str(path), "exec"), mod.__dict__)  # noqa: S102 - the user's own policy

    try:
        _guarded(str(path), "importing it", time_limit, run_module)
    except PolicyError:
        sys.modules.pop(mod_name, None)
        raise
    cls = getattr(mod, cls_name, None)
    if cls is None:
        raise PolicyError(f"{path} has no class {cls_name!r}")
    if not callable(cls):
        raise PolicyError(f"{path}:{cls_name} is not a class")
    inst = _guarded(f"{path}:{cls_name}", "creating it", time_limit, cls)
    if not callable(_guarded(f"{path}:{cls_name}", "reading .should_try_fold", time_limit,
                             getattr, inst, "should_try_fold", None)):
        raise PolicyError(f"{path}:{cls_name} has no should_try_fold(arch, mm, addr, pte) method")
    return GuardedPolicy(inst, time_limit)  # named by its .name, or its class
