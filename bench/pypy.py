# SPDX-License-Identifier: GPL-2.0-only
"""ptlab under PyPy: Debian trixie's PyPy 3.11, kept in ptlab's cache, for long runs.

    python -m bench.pypy --setup               # fetch PyPy and ptlab's dependencies, once
    python -m bench.pypy bench mm --json       # any ptlab command line, run by PyPy
    python -m bench.pypy --check               # fingerprints under PyPy == under CPython

Why a private copy: Debian 12's own ``pypy3`` is 7.3.11, which implements
Python 3.9, and ptlab needs 3.11. trixie's ``pypy3`` (7.3.19) implements 3.11
but is built against trixie's glibc. ``--setup`` fetches it and the libraries
it needs (libc6 among them) through a private apt state, as ``ptlab crosscheck
--setup`` fetches kernels (the archive is the host apt's own, the signatures
are checked), unpacks them under ``<cache>/pypy/root``, and points the
interpreter's ELF loader and RPATH at that tree with ``patchelf``: it then runs
beside the host's libc, and nothing is installed. ptlab's run-time
dependencies come from PyPI (PyPy's own pip, the versions the host's CPython
has), into ``<cache>/pypy/site``.

What runs under PyPy: ``run``, ``compare``, ``bench`` and the other
non-interactive commands (the TUI runs too, but a TUI step is not where PyPy
helps). ``--check`` runs bench.fingerprint under CPython (--write) and under
PyPy (--check): every event, counter, cycle figure and state digest must be
the same.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crosscheck import cache  # noqa: E402
from crosscheck.setup import (  # noqa: E402
    DEFAULT_KEYRING,
    PrivateApt,
    SetupError,
    debian_archive,
    download,
    read_host_sources,
)

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "pypy3"
PYPY = "usr/bin/pypy3.11"  # the interpreter, inside the unpacked tree
DEPENDENCIES = ("textual", "rich", "msgpack", "psutil")  # pyproject.toml's run-time list
WHO = "ptlab pypy"


def pypy_dir(root: Path) -> Path:
    return root / "pypy"


def interpreter(root: Path | None = None) -> Path | None:
    """The set-up PyPy interpreter, None if ``--setup`` has not run (or did not finish)."""
    d = pypy_dir(root or cache.cache_root())
    exe = d / "root" / PYPY
    return exe if exe.is_file() and (d / "site" / ".complete").is_file() else None


def _closure(apt: PrivateApt, package: str) -> list[str]:
    """``package`` and every package it depends on (recursively), by name."""
    r = apt.run("apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests", "--no-conflicts",
                "--no-breaks", "--no-replaces", "--no-enhances", package)
    if r.returncode != 0:
        raise SetupError(f"apt-cache depends {package} failed: {(r.stderr.strip() or '?').splitlines()[-1]}")
    # package names start in column 0; virtual ones are printed as <name> and are not fetched
    return sorted({ln.strip() for ln in r.stdout.splitlines() if ln and not ln[0].isspace()
                   and not ln.startswith("<")})


def setup(stream=sys.stderr) -> int:  # noqa: ANN001 - a text stream
    root = cache.cache_root()
    d = pypy_dir(root)
    if interpreter(root) is not None:
        stream.write(f"{WHO}: already set up ({d}); nothing to do\n")
        return 0
    if shutil.which("patchelf") is None:
        stream.write(f"{WHO}: needs patchelf on the host: apt-get install patchelf\n")
        return 1
    host_arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True,
                               text=True).stdout.strip()
    src = debian_archive(read_host_sources())
    keyring = Path(src.signed_by) if src.signed_by else DEFAULT_KEYRING
    apt = PrivateApt(root, src, keyring, arch=host_arch or "amd64", state=d / "apt")
    apt.prepare()
    stream.write(f"{WHO}: reading trixie ({apt.arch}) from {src.uri}\n")
    stream.flush()
    apt.update()
    names = _closure(apt, PACKAGE) + ["pypy3-dev"]  # -dev: the headers psutil's build needs
    records = [apt.show(n) for n in names]
    missing = [n for n, r in zip(names, records, strict=True) if r is None]
    if missing:
        raise SetupError(f"the archive has no {', '.join(missing)} for {apt.arch}")
    debs = download(apt, [r for r in records if r is not None], d / "debs", stream, who=WHO)
    tree = d / "root"
    shutil.rmtree(tree, ignore_errors=True)
    for deb in debs:
        subprocess.run(["dpkg-deb", "-x", str(deb), str(tree)], check=True, capture_output=True)
    lib = tree / "usr/lib" / _multiarch(tree)
    libs = [lib, tree / "lib" / lib.name]
    ld = next(lib.glob("ld-linux*.so*"), None)
    if ld is None:
        raise SetupError(f"the unpacked libc6 has no dynamic loader in {lib}")
    exe = tree / PYPY
    # RPATH, not RUNPATH: libpypy's own dependencies (libm, libffi ...) must come from the tree too
    subprocess.run(["patchelf", "--set-interpreter", str(ld), "--force-rpath", "--set-rpath",
                    ":".join(str(p) for p in libs), str(exe)], check=True, capture_output=True)
    probe = subprocess.run([str(exe), "-c", "import sys; print(sys.version_info[:2] >= (3, 11))"],
                           capture_output=True, text=True)
    if probe.stdout.strip() != "True":
        why = (probe.stderr.strip() or "?").splitlines()[-1]
        raise SetupError(f"the unpacked PyPy does not start: {why}")
    stream.write(f"{WHO}: installing {', '.join(DEPENDENCIES)} for PyPy (the host's versions)\n")
    stream.flush()
    site = d / "site"
    shutil.rmtree(site, ignore_errors=True)
    with tempfile.TemporaryDirectory() as wheels:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", wheels, "pip"],
                       check=True, capture_output=True)
        pip = next(Path(wheels).glob("pip-*.whl"))
        pins = [_pinned(n) for n in DEPENDENCIES]
        r = subprocess.run([str(exe), f"{pip}/pip", "install", "-q", "--no-cache-dir",
                            "--disable-pip-version-check", "--root-user-action=ignore",
                            "--target", str(site), *pins], capture_output=True, text=True)
    if r.returncode != 0:
        err = [ln for ln in r.stderr.splitlines() if ln.startswith("ERROR")] or r.stderr.splitlines()[-1:]
        raise SetupError(f"pip under PyPy failed: {err[0] if err else r.returncode}")
    (site / ".complete").write_text("")
    for deb in debs:
        deb.unlink(missing_ok=True)
    stream.write(f"{WHO}: ready: python -m bench.pypy <ptlab arguments>\n")
    return 0


def _pinned(name: str) -> str:
    """``name==<the host CPython's version>`` (the newest if the host has none)."""
    try:
        return f"{name}=={importlib.metadata.version(name)}"
    except importlib.metadata.PackageNotFoundError:
        return name


def _multiarch(tree: Path) -> str:
    found = sorted(p.name for p in (tree / "usr/lib").glob("*-linux-gnu*") if p.is_dir())
    if not found:
        raise SetupError("the unpacked packages have no multiarch library directory")
    return found[0]


def _pypy() -> tuple[Path, dict[str, str]] | None:
    """The interpreter and the environment that finds ptlab and its dependencies; None
    (said on stderr) when PyPy is not set up."""
    exe = interpreter()
    if exe is None:
        sys.stderr.write(f"{WHO}: PyPy is not set up: python -m bench.pypy --setup\n")
        return None
    site = pypy_dir(cache.cache_root()) / "site"
    return exe, {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)])}


def run(args: list[str]) -> int:
    """``ptlab ARGS`` under PyPy (exit status passed through)."""
    got = _pypy()
    if got is None:
        return 2
    exe, env = got
    return subprocess.run([str(exe), "-m", "tui.cli", *args], env=env).returncode


def check(only: str | None = None, jobs: int = 2) -> int:
    """Fingerprints (bench.fingerprint) written by CPython, checked under PyPy."""
    got = _pypy()
    if got is None:
        return 2
    exe, env = got
    sel = ["--only", only] if only else []
    with tempfile.TemporaryDirectory() as t:
        ref = str(Path(t) / "cpython.json")
        w = subprocess.run([sys.executable, "-m", "bench.fingerprint", "--write", ref,
                            "--jobs", str(jobs), *sel], cwd=REPO, capture_output=True, text=True)
        if w.returncode != 0:
            sys.stderr.write(w.stdout + w.stderr)
            return 1
        print("CPython: " + w.stdout.strip().splitlines()[-1])
        c = subprocess.run([str(exe), "-m", "bench.fingerprint", "--check", ref, "--jobs", str(jobs), *sel],
                           cwd=REPO, env=env, capture_output=True, text=True)
        out = c.stdout.strip().splitlines()
        for ln in out[:-1][:20]:
            print("PyPy: " + ln)
        print("PyPy: " + (out[-1] if out else (c.stderr.strip().splitlines() or ["no output"])[-1]))
        return c.returncode


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] in (["--setup"], ["--check"], ["-h"], ["--help"]):
        ap = argparse.ArgumentParser(prog="python -m bench.pypy", description=__doc__.split("\n\n")[0])
        g = ap.add_mutually_exclusive_group(required=True)
        g.add_argument("--setup", action="store_true", help="fetch PyPy and the dependencies into the cache")
        g.add_argument("--check", action="store_true", help="fingerprints under PyPy against CPython")
        ap.add_argument("--only", help="with --check: substring of the fingerprint runs to include")
        ap.add_argument("--jobs", type=int, default=2)
        a = ap.parse_args(argv)
        if a.setup:
            try:
                return setup()
            except (SetupError, subprocess.CalledProcessError, OSError, StopIteration) as e:
                sys.stderr.write(f"{WHO}: setup failed: {_one_line(e)}\n")
                return 1
        return check(a.only, a.jobs)
    if not argv:
        sys.stderr.write(f"{WHO}: give ptlab's arguments (python -m bench.pypy bench mm), "
                         "or --setup / --check\n")
        return 2
    return run(argv)


def _one_line(e: BaseException) -> str:
    text = str(e) or type(e).__name__
    return re.sub(r"\s+", " ", text).strip()[:300]


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.stderr.write(f"\n{WHO}: interrupted\n")
        sys.exit(130)
