# SPDX-License-Identifier: GPL-2.0-only
"""Where ``ptlab crosscheck --setup`` keeps what it downloads, so later runs work offline.

The root is ``$PTLAB_CACHE`` if set, else ``$XDG_CACHE_HOME/ptlab``, else ``~/.cache/ptlab``.
Layout (every directory below is created by setup; nothing outside the root is touched)::

    <root>/
      apt/                 a private apt state, so the host's apt is never changed:
        sources.list         the trixie + trixie-backports lines (URI from the host's sources)
        lists/ cache/        apt-get update / apt-get download state
        status               an empty dpkg status file
        empty.d/             an empty directory for the *Parts options
      debs/                .debs while they are being downloaded (deleted once unpacked)
      kernels/<release>/   one complete, unpacked kernel build per directory, e.g. 6.12.117+deb13-arm64
        Image                raw arm64 Image, bootable with ``qemu-system-aarch64 -kernel``
        config               the build's .config (absent when the archive no longer ships it)
        System.map           only if the package had a real one (Debian ships a placeholder)
        modules/*.ko         the few modules the guest loads, decompressed, plus ``load.list``
                             (one file name a line, dependencies first)
        build.json           what setup recorded (package names, versions, sizes, granule)
      busybox/busybox      static arm64 busybox (from busybox-static:arm64)
      busybox/version
      disk/xfs.img         a 3 GiB sparse XFS image (mkfs.xfs defaults), the guest's /mnt/ptlab;
                           QEMU attaches it with snapshot=on, so it stays as mkfs made it
      disk/xfs.version     the mkfs.xfs that made it

A kernel directory appears only complete: setup unpacks into ``kernels/.tmp-*`` and renames
it into place, so an interrupted download never leaves something that looks installed.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_root(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The cache root: *explicit*, else ``$PTLAB_CACHE``, else the XDG cache dir + ``ptlab``."""
    if explicit is not None:
        return Path(explicit).expanduser()
    env = os.environ.get("PTLAB_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "ptlab"


def kernels_dir(root: Path) -> Path:
    """Directory holding one sub-directory per installed kernel build."""
    return root / "kernels"


def busybox_path(root: Path) -> Path:
    """The static arm64 busybox binary the initramfs is built around."""
    return root / "busybox" / "busybox"


def apt_dir(root: Path) -> Path:
    """The private apt state (sources, lists, archives, empty status)."""
    return root / "apt"


def debs_dir(root: Path) -> Path:
    """Download area for .debs; emptied after a successful unpack."""
    return root / "debs"


def xfs_image(root: Path) -> Path:
    """The XFS image the guest mounts at /mnt/ptlab (made by setup with mkfs.xfs)."""
    return root / "disk" / "xfs.img"
