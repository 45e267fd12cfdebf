# SPDX-License-Identifier: GPL-2.0-only
"""``ptlab crosscheck --setup``: fetch the Debian arm64 kernels and busybox into the cache, once.

Everything goes through ``apt-get`` under a private state (its own sources list, lists,
archives and an empty dpkg status, all inside the cache), so the host's apt configuration and
installed packages are never changed and no package is ever installed. The archive URI is the
one the host's apt already uses (read from its sources, never hard-coded) and signatures are
checked with the host's ``debian-archive-keyring``, as for any apt source.

What is fetched: the newest ``linux-image-6.12.*-arm64-unsigned`` from trixie, the newest 7.0
``arm64`` build and the newest ``arm64`` and ``arm64-16k`` builds from trixie-backports (whose
newer kernels are split into ``linux-binary-*`` (vmlinuz), ``linux-base-*`` (config) and
``linux-modules-*``), and ``busybox-static``. Each kernel is reduced to its Image, config and
the few modules the guest loads (see ``GUEST_MODULES``). A second run with everything present
does no network access.
"""

from __future__ import annotations

import gzip
import json
import lzma
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from crosscheck import cache, kernels

HOST_SOURCES = (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list"))
DEFAULT_KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
SUITES = ("trixie", "trixie-backports")

#: Modules the guest loads, by module name; their dependencies are added from each .ko's modinfo
#: (``depends=`` and the ``pre:`` names of ``softdep=``). zram: the synchronous swap device
#: `reclaim` needs; virtio_blk + xfs: the XFS disk file mappings live on (a filesystem with large
#: folios from readahead, like the engine's file model). Debian builds all three as modules
#: (CONFIG_ZRAM=m, CONFIG_VIRTIO_BLK=m, CONFIG_XFS_FS=m in 6.12 and 7.3). The output channel
#: (virtio-console) and the PCI transport are built in.
GUEST_MODULES: tuple[str, ...] = ("zram", "virtio_blk", "xfs")

#: The XFS image the guest mounts at /mnt/ptlab (sparse; QEMU attaches it with snapshot=on, so
#: the cached file is never written). mkfs.xfs's defaults: bookworm's xfsprogs 6.1 (crc, finobt,
#: sparse inodes, reflink, bigtime, inobtcount) is mountable by every cached kernel (6.12+).
XFS_IMAGE_BYTES = 3 << 30

#: (label, package-name regex) for the kernels setup fetches; the newest match of each is taken.
TARGETS: tuple[tuple[str, str], ...] = (
    ("6.12 4K", r"linux-image-6\.12\.\d+\+deb13-arm64-unsigned"),
    ("7.0 4K", r"linux-image-7\.0\.\d+\+deb13-arm64(-unsigned)?"),
    ("newest 16K", r"linux-image-\d+\.\d+\.\d+\+deb13-arm64-16k(-unsigned)?"),
    # the archive dropped 7.0's modules (no zram, no XFS there): the newest 4K build, which has
    # them, is the 7.x build swap and file mappings are checked on at 4K
    ("newest 4K", r"linux-image-\d+\.\d+\.\d+\+deb13-arm64(-unsigned)?"),
)

#: Host tools -> the Debian package providing them.
HOST_TOOLS: tuple[tuple[str, str], ...] = (
    ("qemu-system-aarch64", "qemu-system-arm"),
    ("aarch64-linux-gnu-gcc", "gcc-aarch64-linux-gnu"),
    ("/usr/aarch64-linux-gnu/lib/libc.a", "libc6-dev-arm64-cross"),
    ("mkfs.xfs", "xfsprogs"),
)

#: Where mkfs.xfs is looked for besides $PATH (a non-root user's PATH often lacks the sbin dirs).
SBIN_DIRS = ("/usr/sbin", "/sbin")


class SetupError(Exception):
    """Setup cannot continue; the message is one line for the user."""


# ---------------------------------------------------------------------------- host apt sources


@dataclass(frozen=True)
class SourceEntry:
    """One ``deb`` source of the host: where it is and what verifies it."""

    uri: str
    suites: tuple[str, ...]
    components: tuple[str, ...]
    signed_by: str | None = None


def parse_deb822_sources(text: str) -> list[SourceEntry]:
    """The ``Types: deb`` stanzas of a deb822 ``.sources`` file (``Enabled: no`` skipped)."""
    out = []
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = None
        for line in stanza.splitlines():
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if line[0] in " \t" and key:
                fields[key] += "\n" + line.strip()
                continue
            k, _, v = line.partition(":")
            key = k.strip().lower()
            fields[key] = v.strip()
        if "deb" not in fields.get("types", "").split() or fields.get("enabled", "yes").lower() == "no":
            continue
        signed = fields.get("signed-by")
        if signed is not None and "\n" in signed:
            signed = None  # an inline key block; fall back to the default keyring
        for uri in fields.get("uris", "").split():
            out.append(SourceEntry(uri, tuple(fields.get("suites", "").split()),
                                   tuple(fields.get("components", "").split()), signed or None))
    return out


def parse_one_line_sources(text: str) -> list[SourceEntry]:
    """The ``deb`` lines of a classic sources.list (``deb [opts] URI suite comp...``)."""
    out = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        m = re.match(r"deb\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)\s*(.*)", line)
        if not m:
            continue
        opts = dict(o.split("=", 1) for o in (m.group(1) or "").split() if "=" in o)
        out.append(SourceEntry(m.group(2), (m.group(3),), tuple(m.group(4).split()), opts.get("signed-by")))
    return out


def read_host_sources(paths: Iterable[Path] = HOST_SOURCES) -> list[SourceEntry]:
    """All ``deb`` entries in *paths* (deb822 if the name ends in .sources), unreadable files skipped."""
    entries: list[SourceEntry] = []
    for p in paths:
        try:
            text = p.read_text()
        except OSError:
            continue
        entries += parse_deb822_sources(text) if p.suffix == ".sources" else parse_one_line_sources(text)
    return entries


def debian_archive(entries: list[SourceEntry]) -> SourceEntry:
    """The host's main Debian archive: the first entry with ``main`` that is not a security/ports URI."""
    for e in entries:
        if "main" in e.components and "security" not in e.uri and not any("security" in s for s in e.suites):
            return e
    raise SetupError(
        "no Debian archive found in the host's apt sources ("
        + ", ".join(str(p) for p in HOST_SOURCES) + "); add one, or set up a mirror there"
    )


# ---------------------------------------------------------------------------- private apt


@dataclass
class PrivateApt:
    """apt-get/apt-cache confined to ``<cache>/apt`` (see cache.py)."""

    root: Path
    source: SourceEntry
    keyring: Path
    arch: str = "arm64"  # the guests' (bench.pypy fetches the host's own architecture)
    state: Path | None = None  # default: cache.apt_dir(root)

    @property
    def dir(self) -> Path:
        return self.state if self.state is not None else cache.apt_dir(self.root)

    def prepare(self) -> None:
        """Create the private state and write the sources list (trixie + trixie-backports)."""
        d = self.dir
        for sub in ("lists/partial", "cache/archives/partial", "empty.d"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        if not (d / "status").exists():
            (d / "status").write_text("")
        uri = self.source.uri.rstrip("/")
        lines = [f"deb [arch={self.arch} signed-by={self.keyring}] {uri} {s} main\n" for s in SUITES]
        (d / "sources.list").write_text("".join(lines))

    def options(self) -> list[str]:
        d = self.dir
        opts = {
            "Dir::Etc::SourceList": d / "sources.list",
            "Dir::Etc::SourceParts": d / "empty.d",
            "Dir::Etc::Preferences": "/dev/null",
            "Dir::Etc::PreferencesParts": d / "empty.d",
            "Dir::State::Lists": d / "lists",
            "Dir::Cache": d / "cache",
            "Dir::State::status": d / "status",
            "APT::Architecture": self.arch,
            "APT::Architectures": self.arch,
            "Acquire::Languages": "none",
            "APT::Sandbox::User": "root" if os.geteuid() == 0 else os.environ.get("USER", "root"),
        }
        return [x for k, v in opts.items() for x in ("-o", f"{k}={v}")]

    def run(self, tool: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([tool, "-q", *self.options(), *args], capture_output=True, text=True,
                              cwd=cwd, env={**os.environ, "LC_ALL": "C"})

    def update(self) -> None:
        """``apt-get update`` into the private lists.

        If the keyring cannot verify trixie (a host whose debian-archive-keyring predates the trixie
        keys), the host's own candidate ``debian-archive-keyring`` .deb is downloaded through the
        host's apt (so it is verified by the host's trust) and unpacked into the cache; its keyring
        is used instead. Verification is never switched off.
        """
        r = self.run("apt-get", "update")
        if _signature_failure(r.stdout + r.stderr) and self.keyring != self.dir / KEYRING_IN_DEB:
            newer = fetch_keyring(self.dir)
            if newer is not None:
                self.keyring = newer
                self.prepare()
                r = self.run("apt-get", "update")
        text = r.stdout + r.stderr
        if _signature_failure(text):
            raise SetupError(
                f"{self.keyring} cannot verify trixie's Release files; install a newer "
                "debian-archive-keyring (one with the trixie keys, 2023.3+deb12u1 or later), re-run --setup"
            )
        if r.returncode != 0:
            last = [ln for ln in text.splitlines() if ln.startswith(("E:", "W:"))] or text.splitlines()[-1:]
            raise SetupError(f"apt-get update (private state) failed: {last[0] if last else r.returncode}")

    def names(self) -> list[str]:
        r = self.run("apt-cache", "pkgnames")
        return r.stdout.split()

    def show(self, pkg: str) -> dict[str, str] | None:
        """The candidate record of *pkg* (Package, Version, Size, Depends, ...), None if unknown."""
        r = self.run("apt-cache", "show", "--no-all-versions", pkg)
        if r.returncode != 0 or not r.stdout.strip():
            return None
        rec: dict[str, str] = {}
        for line in r.stdout.split("\n\n", 1)[0].splitlines():
            if line and line[0] not in " \t" and ":" in line:
                k, _, v = line.partition(":")
                rec[k] = v.strip()
        return rec


KEYRING_IN_DEB = Path("keyring/usr/share/keyrings/debian-archive-keyring.gpg")


def _signature_failure(apt_output: str) -> bool:
    return re.search(r"NO_PUBKEY|EXPKEYSIG|is not signed|signatures were invalid|KEYEXPIRED",
                     apt_output) is not None


def fetch_keyring(apt_state: Path) -> Path | None:
    """The host archive's candidate debian-archive-keyring, unpacked under *apt_state*; None if unavailable.

    Uses the host's apt configuration read-only (``apt-get download`` installs nothing), so the
    .deb is verified by the keys the host already trusts.
    """
    work = apt_state / "keyring-dl"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    sandbox = ["-o", "APT::Sandbox::User=root"] if os.geteuid() == 0 else []
    r = subprocess.run(["apt-get", "-q", *sandbox, "download", "debian-archive-keyring"],
                       cwd=work, capture_output=True, text=True)
    debs = list(work.glob("debian-archive-keyring_*.deb"))
    if r.returncode != 0 or len(debs) != 1:
        return None
    dest = apt_state / "keyring"
    shutil.rmtree(dest, ignore_errors=True)
    subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(dest)], check=True, capture_output=True)
    shutil.rmtree(work, ignore_errors=True)
    path = apt_state / KEYRING_IN_DEB
    return path if path.is_file() else None


# ---------------------------------------------------------------------------- plan


@dataclass
class KernelPlan:
    """The packages that make up one kernel build, and what the archive no longer has."""

    label: str
    release: str  # uname -r, e.g. 7.0.13+deb13-arm64
    flavour: str
    packages: list[dict[str, str]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def _vkey(name: str) -> tuple[int, ...]:
    m = re.search(r"-(\d+)\.(\d+)\.(\d+)\+", name)
    return tuple(int(x) for x in m.groups()) if m else ()


def plan_kernels(apt: PrivateApt, names: list[str]) -> list[KernelPlan]:
    """One plan per TARGETS entry: the newest matching image package and its split-out parts."""
    plans: list[KernelPlan] = []
    for label, rx in TARGETS:
        cands = sorted((n for n in names if re.fullmatch(rx, n)), key=_vkey)
        if not cands:
            raise SetupError(f"the archive has no package matching {rx} (for the {label} kernel)")
        pkg = cands[-1]
        release = re.sub(r"^linux-image-|-unsigned$", "", pkg)
        if any(p.release == release for p in plans):  # "newest 4K" may be the 7.0 build itself
            continue
        flavour = "arm64-16k" if release.endswith("-16k") else "arm64"
        plan = KernelPlan(label, release, flavour)
        rec = apt.show(pkg)
        if rec is None:
            raise SetupError(f"apt-cache show {pkg} failed")
        plan.packages.append(rec)
        for dep in re.split(r",\s*", rec.get("Depends", "")):
            dname = dep.split()[0] if dep.strip() else ""
            if re.fullmatch(r"linux-(binary|base|modules)-.*", dname):
                drec = apt.show(dname)
                if drec is None:
                    plan.missing.append(dname)
                else:
                    plan.packages.append(drec)
        plans.append(plan)
    return plans


# ---------------------------------------------------------------------------- progress + download


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


class Progress:
    """A one-line text bar on *stream*, redrawn in place when it is a terminal, else printed per package."""

    def __init__(self, stream: TextIO, total: int) -> None:
        self.stream, self.total, self.done = stream, total, 0
        self.tty = stream.isatty()

    def draw(self, current: int, label: str, final: bool = False) -> None:
        n = self.done + current
        frac = n / self.total if self.total else 1.0
        bar = "#" * int(frac * 30)
        line = f"[{bar:<30}] {_mb(n):>9} / {_mb(self.total)}  {label}"
        if self.tty:
            self.stream.write("\r" + line[:120].ljust(120) + ("\n" if final else ""))
            self.stream.flush()
        elif final:
            self.stream.write(line + "\n")
            self.stream.flush()


def _dir_bytes(d: Path) -> int:
    return sum(p.stat().st_size for p in d.rglob("*") if p.is_file())


def download(apt: PrivateApt, records: list[dict[str, str]], dest: Path, stream: TextIO,
             who: str = "crosscheck setup") -> list[Path]:
    """``apt-get download`` each record (skipping .debs already complete in *dest*), with a bar."""
    dest.mkdir(parents=True, exist_ok=True)
    total = sum(int(r.get("Size", "0")) for r in records)
    stream.write(f"{who}: downloading {len(records)} packages, {_mb(total)}\n")
    prog = Progress(stream, total)
    out = []
    for rec in records:
        name, size = rec["Package"], int(rec.get("Size", "0"))
        have = [p for p in dest.glob(f"{name}_*.deb") if p.stat().st_size == size]
        if not have:
            work = dest / f".dl-{name}"
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir()
            with tempfile.TemporaryFile("w+") as logf:
                cmd = ["apt-get", "-q", *apt.options(), "download", f"{name}={rec['Version']}"]
                proc = subprocess.Popen(cmd, cwd=work, stdout=logf, stderr=subprocess.STDOUT, text=True)
                try:
                    while proc.poll() is None:
                        prog.draw(min(_dir_bytes(work), size), name)
                        time.sleep(0.2)
                finally:
                    if proc.poll() is None:
                        proc.kill()
                        proc.wait()
                logf.seek(0)
                log = logf.read().splitlines()
            debs = list(work.glob("*.deb"))
            if proc.returncode != 0 or len(debs) != 1 or debs[0].stat().st_size != size:
                err = [ln for ln in log if ln.startswith("E:")] or log[-1:]
                raise SetupError(f"downloading {name} failed: {err[0].strip() if err else proc.returncode}")
            target = dest / debs[0].name
            debs[0].replace(target)
            shutil.rmtree(work, ignore_errors=True)
            have = [target]
        prog.draw(size, name, final=True)
        prog.done += size
        out.append(have[0])
    return out


# ---------------------------------------------------------------------------- unpack


def decompress_module(path: Path) -> bytes:
    """A module's ELF bytes (.ko, .ko.xz, .ko.gz, .ko.zst), so busybox insmod can load it."""
    blob = path.read_bytes()
    if path.name.endswith(".xz"):
        return lzma.decompress(blob)
    if path.name.endswith(".gz"):
        return gzip.decompress(blob)
    if path.name.endswith(".zst"):
        r = subprocess.run(["zstd", "-dc"], input=blob, capture_output=True)
        if r.returncode != 0:
            raise SetupError(f"cannot decompress {path.name} (install zstd)")
        return r.stdout
    return blob


def modinfo_pairs(elf: bytes) -> list[tuple[str, str]]:
    """Every key=value string of a module's ``.modinfo`` section (keys repeat: alias, softdep)."""
    if elf[:4] != b"\x7fELF" or elf[4] != 2:
        raise SetupError("not an ELF64 module")
    shoff = struct.unpack_from("<Q", elf, 0x28)[0]
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", elf, 0x3A)
    secs = [struct.unpack_from("<IIQQQQ", elf, shoff + i * shentsize) for i in range(shnum)]
    stroff = secs[shstrndx][4]
    for sh_name, _t, _f, _a, off, size in secs:
        end = elf.index(b"\0", stroff + sh_name)
        if elf[stroff + sh_name:end] == b".modinfo":
            out = []
            for s in elf[off:off + size].split(b"\0"):
                k, sep, v = s.decode("utf-8", "replace").partition("=")
                if sep:
                    out.append((k, v))
            return out
    return []


def modinfo(elf: bytes) -> dict[str, str]:
    """The ``.modinfo`` section of a module (key=value strings; the first value of a repeated key)."""
    info: dict[str, str] = {}
    for k, v in modinfo_pairs(elf):
        info.setdefault(k, v)
    return info


def softdep_pre(value: str) -> list[str]:
    """The ``pre:`` module names of a ``softdep=`` value ("pre: crc32c post: x" -> ["crc32c"])."""
    out, part = [], ""
    for word in value.split():
        if word.endswith(":"):
            part = word[:-1]
        elif part == "pre":
            out.append(word)
    return out


def module_closure(moddir: Path, wanted: Iterable[str]) -> list[tuple[str, bytes]]:
    """*wanted* and their dependencies, dependencies first, decompressed.

    Dependencies are modinfo's ``depends=`` and the ``pre:`` names of ``softdep=`` (6.12's
    libcrc32c needs a "crc32c" crypto driver loaded before it: without modprobe in the guest the
    kernel cannot request it). A name that is no module's file name is looked up among the
    modules' ``alias=`` values (crc32c -> crc32c_generic), scanning crypto/ and lib/ first.
    Debian's packages ship no modules.dep or modules.alias (depmod runs at install), so it is
    worked out here. A wanted module that is built in or absent (no such file) is skipped.
    """
    index: dict[str, Path] = {}
    for p in sorted(moddir.rglob("*.ko*")):
        index[_mod_key(p.name)] = p
    aliases: dict[str, str] = {}
    unscanned = sorted(index.values(), key=lambda p: (p.relative_to(moddir).parts[0] not in ("crypto", "lib"),
                                                      str(p)))
    order: list[tuple[str, bytes]] = []
    seen: set[str] = set()

    def resolve(name: str, by_alias: bool) -> str | None:
        key = name.replace("-", "_")
        if key in index or not by_alias:
            return key if key in index else None
        while key not in aliases and name not in aliases and unscanned:
            p = unscanned.pop(0)
            try:
                pairs = modinfo_pairs(decompress_module(p))
            except (SetupError, OSError, ValueError, lzma.LZMAError, struct.error):
                continue
            for k, v in pairs:
                if k == "alias":
                    aliases.setdefault(v, _mod_key(p.name))
        return aliases.get(name) or aliases.get(key)

    def visit(name: str, by_alias: bool = False) -> None:
        key = resolve(name, by_alias)
        if key is None or key in seen:
            return
        seen.add(key)
        elf = decompress_module(index[key])
        info = modinfo_pairs(elf)
        for dep in (d for k, v in info if k == "softdep" for d in softdep_pre(v)):
            visit(dep, by_alias=True)
        for dep in (d for k, v in info if k == "depends" for d in v.split(",") if d):
            visit(dep)
        order.append((f"{key}.ko", elf))

    for w in wanted:
        visit(w)
    return order


def _mod_key(filename: str) -> str:
    return re.sub(r"\.ko(\.\w+)?$", "", filename).replace("-", "_")


def _find_one(base: Path, patterns: Iterable[str]) -> Path | None:
    for pat in patterns:
        hits = sorted(base.glob(pat))
        if hits:
            return hits[0]
    return None


def unpack_kernel(plan: KernelPlan, debs: list[Path], kdir: Path) -> Path:
    """Unpack *debs* into ``kdir/<release>`` atomically: extract to a temp dir, reduce, rename."""
    final = kdir / plan.release
    tmp = kdir / f".tmp-{plan.release}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "x").mkdir(parents=True)
    try:
        for deb in debs:
            subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp / "x")], check=True, capture_output=True)
        x, r = tmp / "x", plan.release
        vmlinuz = _find_one(x, [f"boot/vmlinuz-{r}", f"usr/lib/modules/{r}/vmlinuz",
                                f"lib/modules/{r}/vmlinuz"])
        if vmlinuz is None:
            raise SetupError(f"no vmlinuz in the packages for {r}")
        out = tmp / "build"
        out.mkdir()
        blob = vmlinuz.read_bytes()
        kind = kernels.image_kind(blob[:64])
        (out / "Image").write_bytes(kernels.raw_image(blob))
        cfg = _find_one(x, [f"boot/config-{r}", f"usr/lib/modules/{r}/config", f"lib/modules/{r}/config"])
        cfg_dict: dict[str, str] = {}
        if cfg is not None:
            shutil.copyfile(cfg, out / "config")
            cfg_dict = kernels.parse_config(cfg.read_text())
        smap = _find_one(x, [f"boot/System.map-{r}", f"usr/lib/modules/{r}/System.map"])
        if smap is not None and smap.stat().st_size > 4096:  # Debian ships a one-line placeholder
            shutil.copyfile(smap, out / "System.map")
        moddir = _find_one(x, [f"usr/lib/modules/{r}/kernel", f"lib/modules/{r}/kernel"])
        loaded: list[str] = []
        if moddir is not None:
            (out / "modules").mkdir()
            mods = module_closure(moddir, GUEST_MODULES)
            for name, elf in mods:
                (out / "modules" / name).write_bytes(elf)
            loaded = [n for n, _ in mods]
            (out / "modules" / "load.list").write_text("".join(f"{n}\n" for n in loaded))
        granule = kernels.granule_from_config(cfg_dict) or (16384 if plan.flavour.endswith("16k") else 4096)
        meta = {
            "version": r, "flavour": plan.flavour, "granule": granule, "vmlinuz_format": kind,
            "packages": {p["Package"]: p["Version"] for p in plan.packages},
            "package_bytes": sum(int(p.get("Size", "0")) for p in plan.packages),
            "missing_from_archive": plan.missing, "modules": loaded,
            "guest_modules": list(GUEST_MODULES),
        }
        (out / "build.json").write_text(json.dumps(meta, indent=1) + "\n")
        shutil.rmtree(final, ignore_errors=True)
        out.rename(final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def unpack_busybox(deb: Path, root: Path) -> Path:
    """``/bin/busybox`` from busybox-static into ``<cache>/busybox`` (temp dir + rename)."""
    dest = cache.busybox_path(root).parent
    tmp = dest.parent / f".tmp-busybox-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp / "x")], check=True, capture_output=True)
        src = _find_one(tmp / "x", ["bin/busybox", "usr/bin/busybox"])
        if src is None:
            raise SetupError("busybox-static has no busybox binary")
        (tmp / "out").mkdir()
        shutil.copyfile(src, tmp / "out" / "busybox")
        (tmp / "out" / "busybox").chmod(0o755)
        (tmp / "out" / "version").write_text(deb.name + "\n")
        shutil.rmtree(dest, ignore_errors=True)
        (tmp / "out").rename(dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest / "busybox"


# ---------------------------------------------------------------------------- entry point


def missing_host_packages(which: Callable[[str], str | None] = shutil.which) -> list[str]:
    """Debian packages to install for the host side (QEMU, the cross compiler, its libc, mkfs.xfs)."""
    out = []
    for tool, pkg in HOST_TOOLS:
        if tool == "mkfs.xfs":
            ok = find_mkfs_xfs(which) is not None
        else:
            ok = Path(tool).exists() if tool.startswith("/") else which(tool) is not None
        if not ok:
            out.append(pkg)
    return out


def find_mkfs_xfs(which: Callable[[str], str | None] = shutil.which) -> str | None:
    """mkfs.xfs on $PATH or in /usr/sbin, /sbin; None when xfsprogs is not installed."""
    hit = which("mkfs.xfs")
    if hit is None and which is shutil.which:
        hit = next((str(Path(d) / "mkfs.xfs") for d in SBIN_DIRS if (Path(d) / "mkfs.xfs").is_file()), None)
    return hit


def ensure_xfs_image(root: Path, stream: TextIO, mkfs: str | None = None,
                     size: int = XFS_IMAGE_BYTES) -> Path | None:
    """The cached XFS image (``cache.xfs_image``), made once with mkfs.xfs; None without xfsprogs.

    A sparse file of *size* bytes, formatted with mkfs.xfs's defaults into a temporary name and
    renamed into place, so an interrupted mkfs never leaves an image that looks ready. Offline.
    """
    img = cache.xfs_image(root)
    if img.is_file():
        return img
    mkfs = mkfs or find_mkfs_xfs()
    if mkfs is None:
        stream.write("crosscheck setup: no mkfs.xfs (xfsprogs); file mappings need the XFS image\n")
        return None
    img.parent.mkdir(parents=True, exist_ok=True)
    tmp = img.parent / f".tmp-{img.name}-{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.truncate(size)
        r = subprocess.run([mkfs, "-q", "-L", "ptlab", str(tmp)], capture_output=True, text=True)
        if r.returncode != 0:
            last = (r.stderr.strip().splitlines() or [f"exit {r.returncode}"])[-1]
            raise SetupError(f"mkfs.xfs failed: {last}")
        v = subprocess.run([mkfs, "-V"], capture_output=True, text=True)
        tmp.replace(img)
        (img.parent / "xfs.version").write_text(v.stdout.strip() + "\n")
    finally:
        tmp.unlink(missing_ok=True)
    stream.write(f"crosscheck setup: made the XFS image {img} ({size >> 30} GiB sparse)\n")
    return img


def _meta(d: Path) -> dict[str, Any]:
    try:
        return dict(json.loads((d / "build.json").read_text()))
    except (OSError, ValueError):
        return {}


def stale_builds(root: Path) -> list[Path]:
    """Cached build directories whose modules predate GUEST_MODULES (a build without modules,
    like 7.0.13 whose archive dropped them, is never stale)."""
    out = []
    for b in kernels.installed_kernels(root):
        d = b.image.parent
        if (d / "modules").is_dir() and _meta(d).get("guest_modules") != list(GUEST_MODULES):
            out.append(d)
    return out


def is_set_up(root: Path) -> bool:
    """True when every target kernel (with the current GUEST_MODULES) and busybox are in the
    cache, so setup needs no network."""
    builds = kernels.installed_kernels(root)
    have = {(b.series, b.flavour) for b in builds}
    return (
        cache.busybox_path(root).is_file()
        and ("6.12", "arm64") in have
        and ("7.0", "arm64") in have
        and any(f == "arm64-16k" for _s, f in have)
        and any(f == "arm64" and s not in ("6.12", "7.0") for s, f in have)
        and not stale_builds(root)
    )


def run_setup(cache_dir: str | os.PathLike[str] | None = None, stream: TextIO | None = None,
              refresh: bool = False) -> int:
    """Fetch and cache the kernels and busybox; 0 on success, 1 on failure (one line on *stream*).

    Idempotent: with everything cached (and not *refresh*), it only reports and checks host tools.
    """
    stream = stream if stream is not None else sys.stderr
    root = cache.cache_root(cache_dir)
    status = 0
    try:
        if refresh or not is_set_up(root):
            _fetch_all(root, stream)
        ensure_xfs_image(root, stream)
        for b in kernels.installed_kernels(root):
            miss = kernels.check_config(b)
            note = f"; missing: {', '.join(miss)}" if miss else ""
            stream.write(f"crosscheck: kernel {b.version} ({b.granule // 1024}K pages){note}\n")
        stream.write(f"crosscheck: cache ready in {root}\n")
    except SetupError as e:
        stream.write(f"crosscheck setup: {e}\n")
        status = 1
    except KeyboardInterrupt:
        stream.write("\ncrosscheck setup: interrupted (nothing half-unpacked was left; re-run to finish)\n")
        status = 1
    missing = missing_host_packages()
    if missing:
        stream.write(f"crosscheck: install the host packages: apt-get install {' '.join(missing)}\n")
        status = status or 1
    stream.flush()
    return status


def _fetch_all(root: Path, stream: TextIO) -> None:
    src = debian_archive(read_host_sources())
    keyring = Path(src.signed_by) if src.signed_by else DEFAULT_KEYRING
    apt = PrivateApt(root, src, keyring)
    apt.prepare()
    stream.write(f"crosscheck setup: reading {', '.join(SUITES)} (arm64) from {src.uri}\n")
    stream.flush()
    apt.update()
    names = apt.names()
    plans = plan_kernels(apt, names)
    bb = apt.show("busybox-static")
    if bb is None:
        raise SetupError("the archive has no busybox-static for arm64")
    kdir = cache.kernels_dir(root)
    kdir.mkdir(parents=True, exist_ok=True)
    stale = {d.name: d for d in stale_builds(root)}
    todo = [p for p in plans if not (kdir / p.release / "build.json").is_file() or p.release in stale]
    for rel, d in stale.items():
        if any(p.release == rel for p in plans):
            continue
        again = _replan(apt, d)
        if again is None:
            meta = _meta(d)
            kept = ", ".join(str(m) for m in meta.get("modules", []))
            stream.write(f"crosscheck setup: note: {rel}'s packages are no longer in the archive; "
                         f"it keeps its modules ({kept})\n")
            meta["guest_modules"] = list(GUEST_MODULES)
            (d / "build.json").write_text(json.dumps(meta, indent=1) + "\n")
        else:
            todo.append(again)
    need_bb = not cache.busybox_path(root).is_file()
    records = [r for p in todo for r in p.packages] + ([bb] if need_bb else [])
    debs = download(apt, records, cache.debs_dir(root), stream) if records else []
    by_name = {r["Package"]: d for r, d in zip(records, debs, strict=True)}
    for p in todo:
        stream.write(f"crosscheck setup: unpacking {p.release}\n")
        stream.flush()
        unpack_kernel(p, [by_name[r["Package"]] for r in p.packages], kdir)
        if p.missing:
            stream.write(f"crosscheck setup: note: {', '.join(p.missing)} no longer in the archive "
                         f"(this build has no config/modules)\n")
    if need_bb:
        unpack_busybox(by_name[bb["Package"]], root)
    for d in debs:
        d.unlink(missing_ok=True)


def _replan(apt: PrivateApt, d: Path) -> KernelPlan | None:
    """The plan that rebuilds cached build *d* from the same package versions (to add modules),
    None when the archive no longer has exactly those versions."""
    meta = _meta(d)
    pkgs = meta.get("packages")
    if not isinstance(pkgs, dict) or not pkgs:
        return None
    plan = KernelPlan("cached", str(meta["version"]), str(meta["flavour"]),
                      missing=list(meta.get("missing_from_archive", [])))
    for name, version in pkgs.items():
        rec = apt.show(name)
        if rec is None or rec.get("Version") != version:
            return None
        plan.packages.append(rec)
    return plan


def main(argv: list[str] | None = None) -> int:
    """``python -m crosscheck.setup [--refresh] [CACHE_DIR]``."""
    args = list(sys.argv[1:] if argv is None else argv)
    refresh = "--refresh" in args
    rest = [a for a in args if a != "--refresh"]
    return run_setup(rest[0] if rest else None, refresh=refresh)


if __name__ == "__main__":
    sys.exit(main())
