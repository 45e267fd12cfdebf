# SPDX-License-Identifier: GPL-2.0-only
"""Kernel builds the guest can boot: the cached Debian ones and a developer's own Image.

A build is described once (``KernelBuild``) so the runner, the profile choice and the config
check all agree on what is being booted. Image formats are checked here, at setup or at the
command line, because QEMU's own error for an unbootable ``-kernel`` is a silent hang or a
cryptic message.
"""

from __future__ import annotations

import gzip
import json
import re
import struct
import subprocess
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from crosscheck import cache

ARM64_MAGIC = b"ARM\x64"  # at offset 0x38 of a raw arm64 Image (Documentation/arch/arm64/booting.rst)
ZBOOT_MAGIC = b"zimg"  # at offset 4 of an EFI zboot image (drivers/firmware/efi/libstub/zboot-header.S)


class KernelError(Exception):
    """A kernel image or build that cannot be used; the message is one line for the user."""


@dataclass(frozen=True)
class KernelBuild:
    """One bootable kernel and what is known about it."""

    name: str  # e.g. "debian-6.12.117+deb13-arm64" or "user:/path/Image"
    version: str  # uname -r, e.g. "6.12.117+deb13-arm64" ("" when unknown)
    series: str  # major.minor, e.g. "6.12" ("" when unknown)
    flavour: str  # "arm64", "arm64-16k", or "user"
    granule: int  # page size in bytes (4096, 16384, 65536)
    image: Path  # raw arm64 Image for qemu -kernel
    config: dict[str, str] = field(default_factory=dict)  # CONFIG_X -> "y"/"m"/value; "n" when "not set"
    config_known: bool = False  # False when no .config could be found for this build
    modules_dir: Path | None = None  # directory with decompressed .ko files and load.list

    def modules(self) -> list[tuple[str, bytes]]:
        """The modules to load in the guest, in dependency order (empty if none are cached)."""
        if self.modules_dir is None or not (self.modules_dir / "load.list").is_file():
            return []
        names = (self.modules_dir / "load.list").read_text().split()
        return [(n, (self.modules_dir / n).read_bytes()) for n in names]

    def module_names(self) -> list[str]:
        """The file names in ``load.list`` ("xfs.ko", ...), without reading the modules."""
        if self.modules_dir is None or not (self.modules_dir / "load.list").is_file():
            return []
        return (self.modules_dir / "load.list").read_text().split()

    def xfs_support(self) -> bool | None:
        """Can the guest mount the XFS disk: virtio_blk and xfs each built in (config ``=y``) or
        among the cached modules. None when unknowable (a user's Image without a config); a
        Debian build without a config (7.0.13) builds them as modules, which it does not have."""
        names = set(self.module_names())

        def has(mod: str, opt: str) -> bool:
            return self.config.get(opt) == "y" or f"{mod}.ko" in names

        if has("virtio_blk", "CONFIG_VIRTIO_BLK") and has("xfs", "CONFIG_XFS_FS"):
            return True
        if self.config_known or self.flavour != "user":
            return False
        return None


# ---------------------------------------------------------------------------- config


def parse_config(text: str) -> dict[str, str]:
    """Parse a Kconfig .config: ``CONFIG_X=v`` -> v (quotes stripped), ``# CONFIG_X is not set`` -> "n"."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        m = re.fullmatch(r"(CONFIG_\w+)=(.*)", line)
        if m:
            v = m.group(2)
            out[m.group(1)] = v[1:-1] if len(v) >= 2 and v[0] == v[-1] == '"' else v
            continue
        m = re.fullmatch(r"# (CONFIG_\w+) is not set", line)
        if m:
            out[m.group(1)] = "n"
    return out


def granule_from_config(cfg: dict[str, str]) -> int | None:
    """Page size from CONFIG_ARM64_{4K,16K,64K}_PAGES, None if the config says nothing."""
    for kb in (4, 16, 64):
        if cfg.get(f"CONFIG_ARM64_{kb}K_PAGES") == "y":
            return kb * 1024
    return None


#: What crosscheck needs, as (what it is for, alternatives any of which suffices).
REQUIRED: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("contpte", ("CONFIG_ARM64_CONTPTE",)),
    ("ftrace", ("CONFIG_FTRACE",)),
    ("function tracer", ("CONFIG_FUNCTION_TRACER",)),
    ("kprobe events", ("CONFIG_KPROBE_EVENTS",)),
    ("THP", ("CONFIG_TRANSPARENT_HUGEPAGE",)),
    ("swap", ("CONFIG_SWAP",)),
    ("zram", ("CONFIG_ZRAM",)),
    ("NUMA", ("CONFIG_NUMA",)),
    ("migration", ("CONFIG_MIGRATION",)),
    ("debugfs (split_huge_pages)", ("CONFIG_DEBUG_FS",)),
)


def check_config(build: KernelBuild) -> list[str]:
    """Missing features, each as "CONFIG_X (what for)"; ["config unknown"] if there is no config.

    ``=m`` counts as present (zram is a module on Debian; setup caches it).
    """
    if not build.config_known:
        return ["config unknown (no .config for this build; features can only be probed at boot)"]
    missing = []
    for what, alts in REQUIRED:
        if not any(build.config.get(a) in ("y", "m") for a in alts):
            missing.append(f"{'/'.join(alts)} ({what})")
    return missing


# ---------------------------------------------------------------------------- image formats


def image_kind(head: bytes) -> str:
    """Classify the first bytes of a kernel file: "image", "zboot", "gzip", "zstd" or "unknown".

    A Debian arm64 vmlinuz is a raw Image with an EFI stub ("MZ" + "ARM\\x64" at 0x38), which QEMU
    boots directly; an EFI zboot image ("MZ" + "zimg" at 4) wraps a compressed Image that QEMU's
    -kernel cannot boot, so setup extracts it.
    """
    if head[4:8] == ZBOOT_MAGIC and head[:2] == b"MZ":
        return "zboot"
    if head[0x38:0x3C] == ARM64_MAGIC:
        return "image"
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if head[:4] == b"\x28\xb5\x2f\xfd":
        return "zstd"
    return "unknown"


def _decompress(kind: str, payload: bytes) -> bytes:
    if kind == "gzip":
        return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(payload)
    if kind == "zstd":
        try:
            r = subprocess.run(["zstd", "-dc"], input=payload, capture_output=True, check=True)
        except (OSError, subprocess.CalledProcessError) as e:
            raise KernelError(f"cannot decompress a zstd kernel payload (install zstd): {e}") from None
        return r.stdout
    raise KernelError(f"unsupported kernel payload compression {kind!r}")


def raw_image(blob: bytes) -> bytes:
    """The raw arm64 Image inside *blob* (itself, a zboot payload, or a gzip/zstd stream)."""
    kind = image_kind(blob[:64])
    if kind == "image":
        return blob
    if kind == "zboot":
        off, size = struct.unpack_from("<II", blob, 8)
        comp = blob[0x18:0x20].rstrip(b"\0").decode("ascii", "replace")
        inner = _decompress(comp, blob[off:off + size])
    elif kind in ("gzip", "zstd"):
        inner = _decompress(kind, blob)
    else:
        raise KernelError("not an arm64 kernel Image (no ARM\\x64 magic at 0x38, not zboot/gzip/zstd)")
    if image_kind(inner[:64]) != "image":
        raise KernelError("the compressed payload is not an arm64 Image")
    return inner


def extract_ikconfig(blob: bytes) -> str | None:
    """The .config embedded by CONFIG_IKCONFIG (between IKCFG_ST and IKCFG_ED), or None."""
    start = blob.find(b"IKCFG_ST")
    if start < 0:
        return None
    end = blob.find(b"IKCFG_ED", start)
    if end < 0:
        return None
    try:
        return gzip.decompress(blob[start + 8:end]).decode("utf-8", "replace")
    except (OSError, EOFError, zlib.error):
        return None


def image_version(blob: bytes) -> str:
    """``uname -r`` from the "Linux version X (" banner inside an Image, "" if not found."""
    m = re.search(rb"Linux version (\S+) \(", blob)
    return m.group(1).decode("ascii", "replace") if m else ""


def _series(version: str) -> str:
    m = re.match(r"(\d+\.\d+)", version)
    return m.group(1) if m else ""


# ---------------------------------------------------------------------------- builds


def load_build(d: Path) -> KernelBuild:
    """The KernelBuild setup recorded in directory *d* (``build.json`` + Image + config)."""
    meta = json.loads((d / "build.json").read_text())
    cfg_path = d / "config"
    cfg = parse_config(cfg_path.read_text()) if cfg_path.is_file() else {}
    mods = d / "modules"
    return KernelBuild(
        name=f"debian-{meta['version']}",
        version=meta["version"],
        series=_series(meta["version"]),
        flavour=meta["flavour"],
        granule=int(meta["granule"]),
        image=d / "Image",
        config=cfg,
        config_known=cfg_path.is_file(),
        modules_dir=mods if mods.is_dir() else None,
    )


def installed_kernels(root: Path | None = None) -> list[KernelBuild]:
    """Every complete build in the cache (partial ``.tmp-*`` directories are ignored), oldest first."""
    kdir = cache.kernels_dir(root if root is not None else cache.cache_root())
    if not kdir.is_dir():
        return []
    builds = []
    for d in kdir.iterdir():
        if d.name.startswith(".") or not (d / "build.json").is_file() or not (d / "Image").is_file():
            continue
        try:
            builds.append(load_build(d))
        except (OSError, ValueError, KeyError):
            continue
    return sorted(builds, key=lambda b: (_version_key(b.version), b.flavour))


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", version.split("+")[0]))


def pick(
    kernels: list[KernelBuild], debian: str | None = None, granule: int | None = None
) -> list[KernelBuild]:
    """The builds matching ``--debian`` ("6.12", "7.0", "newest" or None = all) and *granule* (bytes).

    For a series, the newest patch release of that series wins; "newest" is the newest series
    available at that granule. Returns one build per series (oldest first); empty if none match.
    """
    cands = [k for k in kernels if granule is None or k.granule == granule]
    if debian not in (None, "newest"):
        cands = [k for k in cands if k.series == debian]
    best: dict[tuple[str, int], KernelBuild] = {}
    for k in cands:
        key = (k.series, k.granule)
        if key not in best or _version_key(k.version) > _version_key(best[key].version):
            best[key] = k
    out = sorted(best.values(), key=lambda b: (_version_key(b.version), b.granule))
    if debian == "newest" and out:
        top = max(_version_key(b.series) for b in out)
        out = [b for b in out if _version_key(b.series) == top]
    return out


def user_image(path: str | Path, config_path: str | Path | None = None) -> KernelBuild:
    """A developer's own arm64 kernel: a raw ``Image`` (or zboot/gzip, unwrapped next to nothing).

    The config comes from *config_path*, else from an embedded IKCONFIG, else it is unknown
    (``check_config`` says so). Raises KernelError with one line for anything unusable.
    """
    p = Path(path)
    try:
        blob = p.read_bytes()
    except OSError as e:
        raise KernelError(f"{p}: cannot read kernel image: {e.strerror or e}") from None
    kind = image_kind(blob[:64])
    if kind != "image":
        if kind == "unknown":
            raise KernelError(f"{p}: not an arm64 kernel Image (no 'ARM\\x64' magic at offset 0x38)")
        raise KernelError(
            f"{p}: a {kind} kernel; give the raw arch/arm64/boot/Image (qemu -kernel boots only that)"
        )
    text = None
    if config_path is not None:
        try:
            text = Path(config_path).read_text()
        except OSError as e:
            raise KernelError(f"{config_path}: cannot read config: {e.strerror or e}") from None
    else:
        text = extract_ikconfig(blob)
    cfg = parse_config(text) if text is not None else {}
    version = image_version(blob)
    return KernelBuild(
        name=f"user:{p}",
        version=version,
        series=_series(version),
        flavour="user",
        granule=granule_from_config(cfg) or _granule_from_header(blob),
        image=p,
        config=cfg,
        config_known=text is not None,
        modules_dir=None,
    )


def _granule_from_header(blob: bytes) -> int:
    """Page size from the Image header flags (bits 1-2: 1=4K, 2=16K, 3=64K); 4K if unspecified."""
    flags = struct.unpack_from("<Q", blob, 0x18)[0]
    return {1: 4096, 2: 16384, 3: 65536}.get((flags >> 1) & 3, 4096)
