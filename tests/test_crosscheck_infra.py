# SPDX-License-Identifier: GPL-2.0-only
"""crosscheck infrastructure: cache paths, sources reading, kernel picking and formats, the
initramfs writer, and (when QEMU and the cached kernels are there) real boots."""

from __future__ import annotations

import gzip
import lzma
import os
import shutil
import signal
import stat
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from crosscheck import cache, guest, initramfs, kernels, setup
from crosscheck.guest_script import guest_script

# ---------------------------------------------------------------------------- cache


def test_cache_root_precedence(monkeypatch, tmp_path):
    monkeypatch.delenv("PTLAB_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.cache_root() == tmp_path / "xdg" / "ptlab"
    monkeypatch.setenv("PTLAB_CACHE", str(tmp_path / "explicit"))
    assert cache.cache_root() == tmp_path / "explicit"
    assert cache.cache_root(tmp_path / "arg") == tmp_path / "arg"
    monkeypatch.delenv("PTLAB_CACHE")
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache.cache_root() == Path.home() / ".cache" / "ptlab"


# ---------------------------------------------------------------------------- sources


DEB822 = """\
Types: deb
# http://snapshot.example/archive/debian/20250520T000000Z
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://src.example/debian
Suites: bookworm
Components: main
"""


def test_deb822_sources(tmp_path):
    f = tmp_path / "debian.sources"
    f.write_text(DEB822)
    entries = setup.read_host_sources([f, tmp_path / "missing.list"])
    assert [e.uri for e in entries] == ["http://mirror.example/debian", "http://mirror.example/debian-security"]
    arch = setup.debian_archive(entries)
    assert arch.uri == "http://mirror.example/debian"
    assert arch.signed_by == "/usr/share/keyrings/debian-archive-keyring.gpg"


def test_one_line_sources(tmp_path):
    f = tmp_path / "sources.list"
    f.write_text("# comment\ndeb http://sec.example/debian-security bookworm-security main\n"
                 "deb [arch=amd64 signed-by=/k.gpg] http://one.example/debian bookworm main contrib\n"
                 "deb-src http://one.example/debian bookworm main\n")
    arch = setup.debian_archive(setup.read_host_sources([f]))
    assert (arch.uri, arch.suites, arch.signed_by) == ("http://one.example/debian", ("bookworm",), "/k.gpg")


def test_no_archive_is_one_line_error(tmp_path):
    with pytest.raises(setup.SetupError) as e:
        setup.debian_archive(setup.read_host_sources([tmp_path / "none.sources"]))
    assert "\n" not in str(e.value)


def test_private_apt_options_stay_inside_cache(tmp_path):
    apt = setup.PrivateApt(tmp_path, setup.SourceEntry("http://m.example/debian/", ("bookworm",), ("main",)),
                           Path("/k.gpg"))
    apt.prepare()
    text = (tmp_path / "apt" / "sources.list").read_text()
    assert "deb [arch=arm64 signed-by=/k.gpg] http://m.example/debian trixie main" in text
    assert "trixie-backports main" in text
    opts = apt.options()
    vals = dict(o.split("=", 1) for o in opts[1::2])
    assert vals["APT::Architecture"] == "arm64"
    for k in ("Dir::Etc::SourceList", "Dir::State::Lists", "Dir::Cache", "Dir::State::status"):
        assert vals[k].startswith(str(tmp_path)), k
    assert (tmp_path / "apt" / "status").read_text() == ""


def test_signature_failure_detection():
    assert setup._signature_failure("W: GPG error: http://x trixie InRelease: NO_PUBKEY 6ED0E7B82643E131")
    assert setup._signature_failure("E: The repository 'http://x trixie InRelease' is not signed.")
    assert not setup._signature_failure("Get:1 http://x trixie InRelease [140 kB]")


def test_missing_host_packages_line():
    assert setup.missing_host_packages(lambda _t: None)[:2] == ["qemu-system-arm", "gcc-aarch64-linux-gnu"]


# ---------------------------------------------------------------------------- config + formats


CONFIG = """\
CONFIG_ARM64_CONTPTE=y
CONFIG_FTRACE=y
CONFIG_FUNCTION_TRACER=y
CONFIG_KPROBE_EVENTS=y
CONFIG_TRANSPARENT_HUGEPAGE=y
CONFIG_SWAP=y
CONFIG_ZRAM=m
CONFIG_NUMA=y
CONFIG_MIGRATION=y
# CONFIG_DEBUG_FS is not set
CONFIG_ARM64_16K_PAGES=y
CONFIG_CMDLINE="console=ttyAMA0"
"""


def _build(**kw) -> kernels.KernelBuild:
    base = dict(name="t", version="6.12.1+deb13-arm64", series="6.12", flavour="arm64", granule=4096,
                image=Path("/nonexistent"), config={}, config_known=True)
    base.update(kw)
    return kernels.KernelBuild(**base)


def test_parse_config_and_check():
    cfg = kernels.parse_config(CONFIG)
    assert cfg["CONFIG_DEBUG_FS"] == "n" and cfg["CONFIG_ZRAM"] == "m"
    assert cfg["CONFIG_CMDLINE"] == "console=ttyAMA0"
    assert kernels.granule_from_config(cfg) == 16384
    missing = kernels.check_config(_build(config=cfg))
    assert missing == ["CONFIG_DEBUG_FS (debugfs (split_huge_pages))"]
    assert kernels.check_config(_build(config={}, config_known=False))[0].startswith("config unknown")
    assert len(kernels.check_config(_build(config={}))) == len(kernels.REQUIRED)


def _fake_image(payload: bytes = b"") -> bytes:
    head = bytearray(64)
    head[0:2] = b"MZ"
    head[0x18:0x20] = struct.pack("<Q", 2 << 1)  # 16K pages in the header flags
    head[0x38:0x3C] = kernels.ARM64_MAGIC
    return bytes(head) + b"Linux version 6.99.0-test (me@host) #1\0" + payload


def _fake_zboot(inner: bytes) -> bytes:
    comp = gzip.compress(inner)
    head = bytearray(0x40)
    head[0:2] = b"MZ"
    head[4:8] = kernels.ZBOOT_MAGIC
    struct.pack_into("<II", head, 8, 0x40, len(comp))
    head[0x18:0x1C] = b"gzip"
    return bytes(head) + comp


def test_image_kinds_and_zboot_extraction():
    img = _fake_image()
    assert kernels.image_kind(img) == "image"
    z = _fake_zboot(img)
    assert kernels.image_kind(z) == "zboot"
    assert kernels.raw_image(z) == img
    assert kernels.raw_image(gzip.compress(img)) == img
    assert kernels.image_kind(b"\x7fELF" + bytes(60)) == "unknown"
    with pytest.raises(kernels.KernelError):
        kernels.raw_image(b"\x7fELF" + bytes(60))


def test_user_image(tmp_path):
    p = tmp_path / "Image"
    p.write_bytes(_fake_image())
    b = kernels.user_image(p)
    assert (b.version, b.series, b.granule, b.config_known) == ("6.99.0-test", "6.99", 16384, False)
    assert kernels.check_config(b)[0].startswith("config unknown")
    cfgf = tmp_path / "config"
    cfgf.write_text(CONFIG)
    assert kernels.user_image(p, cfgf).config["CONFIG_ZRAM"] == "m"
    embedded = _fake_image(b"IKCFG_ST" + gzip.compress(CONFIG.encode()) + b"IKCFG_ED")
    p.write_bytes(embedded)
    assert kernels.user_image(p).config_known
    bad = tmp_path / "vmlinux"
    bad.write_bytes(b"\x7fELF" + bytes(100))
    with pytest.raises(kernels.KernelError, match="not an arm64 kernel Image"):
        kernels.user_image(bad)
    zb = tmp_path / "vmlinuz.efi"
    zb.write_bytes(_fake_zboot(_fake_image()))
    with pytest.raises(kernels.KernelError, match="zboot"):
        kernels.user_image(zb)


def test_pick():
    ks = [
        _build(version="6.12.57+deb13-arm64", series="6.12"),
        _build(version="6.12.117+deb13-arm64", series="6.12"),
        _build(version="7.0.13+deb13-arm64", series="7.0"),
        _build(version="7.3.4+deb13-arm64-16k", series="7.3", flavour="arm64-16k", granule=16384),
    ]
    assert [k.version for k in kernels.pick(ks, "6.12", 4096)] == ["6.12.117+deb13-arm64"]
    assert [k.version for k in kernels.pick(ks, "newest", 4096)] == ["7.0.13+deb13-arm64"]
    assert [k.version for k in kernels.pick(ks, "newest", 16384)] == ["7.3.4+deb13-arm64-16k"]
    assert [k.version for k in kernels.pick(ks, None, 4096)] == ["6.12.117+deb13-arm64", "7.0.13+deb13-arm64"]
    assert kernels.pick(ks, "7.0", 16384) == []
    assert len(kernels.pick(ks)) == 3


def test_installed_kernels_ignores_partial(tmp_path):
    kd = tmp_path / "kernels"
    (kd / ".tmp-7.0.1+deb13-arm64-1").mkdir(parents=True)
    good = kd / "6.12.1+deb13-arm64"
    good.mkdir()
    (good / "Image").write_bytes(_fake_image())
    (good / "config").write_text(CONFIG)
    (good / "build.json").write_text('{"version": "6.12.1+deb13-arm64", "flavour": "arm64", "granule": 4096}')
    half = kd / "7.0.1+deb13-arm64"
    half.mkdir()
    (half / "Image").write_bytes(b"")
    builds = kernels.installed_kernels(tmp_path)
    assert [b.version for b in builds] == ["6.12.1+deb13-arm64"]
    assert builds[0].config_known and builds[0].series == "6.12"


# ---------------------------------------------------------------------------- modules


def _fake_module(depends: str, extra: tuple[str, ...] = ()) -> bytes:
    """A minimal ELF64 with a .modinfo and a .shstrtab section, enough for setup.modinfo;
    *extra*: more key=value strings (alias=, softdep=)."""
    modinfo = f"license=GPL\0depends={depends}\0name=x\0".encode()
    modinfo += b"".join(f"{e}\0".encode() for e in extra)
    shstr = b"\0.modinfo\0.shstrtab\0"
    data_off = 64
    shoff = data_off + len(modinfo) + len(shstr)
    ehdr = bytearray(64)
    ehdr[0:5] = b"\x7fELF\x02"
    struct.pack_into("<Q", ehdr, 0x28, shoff)
    struct.pack_into("<HHH", ehdr, 0x3A, 64, 3, 2)
    sh = bytes(64)
    sh += struct.pack("<IIQQQQ", 1, 1, 0, 0, data_off, len(modinfo)) + bytes(24)
    sh += struct.pack("<IIQQQQ", 10, 3, 0, 0, data_off + len(modinfo), len(shstr)) + bytes(24)
    return bytes(ehdr) + modinfo + shstr + sh


def test_module_closure_orders_dependencies(tmp_path):
    (tmp_path / "drivers").mkdir()
    (tmp_path / "drivers" / "zram.ko.xz").write_bytes(lzma.compress(_fake_module("lz4_compress,zsmalloc")))
    (tmp_path / "lz4_compress.ko").write_bytes(_fake_module(""))
    (tmp_path / "zsmalloc.ko.xz").write_bytes(lzma.compress(_fake_module("lz4_compress")))
    assert setup.modinfo(_fake_module("a,b"))["depends"] == "a,b"
    order = [n for n, _ in setup.module_closure(tmp_path, ["zram"])]
    assert order == ["lz4_compress.ko", "zsmalloc.ko", "zram.ko"]
    elf = dict(setup.module_closure(tmp_path, ["zram"]))["zram.ko"]
    assert elf[:4] == b"\x7fELF"


def test_module_closure_follows_softdep_through_aliases(tmp_path):
    # 6.12: xfs depends on libcrc32c, whose "softdep=pre: crc32c" names crc32c_generic's alias
    for sub in ("fs/xfs", "lib", "crypto", "drivers/block"):
        (tmp_path / sub).mkdir(parents=True)
    (tmp_path / "fs/xfs/xfs.ko.xz").write_bytes(lzma.compress(_fake_module("libcrc32c", ("alias=fs-xfs",))))
    (tmp_path / "lib/libcrc32c.ko.xz").write_bytes(
        lzma.compress(_fake_module("", ("softdep=pre: crc32c post: nothing_here",))))
    (tmp_path / "crypto/crc32c_generic.ko").write_bytes(
        _fake_module("", ("alias=crypto-crc32c-generic", "alias=crc32c", "alias=crypto-crc32c")))
    (tmp_path / "drivers/block/virtio_blk.ko").write_bytes(_fake_module("", ("alias=virtio:d00000002v*",)))
    assert setup.softdep_pre("pre: a b post: c") == ["a", "b"] and setup.softdep_pre("post: c") == []
    assert [k for k, _ in setup.modinfo_pairs(_fake_module("", ("alias=a", "alias=b")))].count("alias") == 2
    order = [n for n, _ in setup.module_closure(tmp_path, ["zram", "virtio_blk", "xfs"])]
    assert order == ["virtio_blk.ko", "crc32c_generic.ko", "libcrc32c.ko", "xfs.ko"]


# ---------------------------------------------------------------------------- setup: XFS image, stale modules


def _fake_mkfs(tmp_path: Path) -> tuple[str, Path]:
    log = tmp_path / "mkfs.log"
    script = tmp_path / "mkfs.xfs"
    script.write_text(f'#!/bin/sh\necho "$@" >> {log}\n[ "$1" = -V ] && echo "mkfs.xfs version 0.fake" '
                      '&& exit 0\nfor a; do f=$a; done\nprintf XFSB | dd of="$f" conv=notrunc 2>/dev/null\n')
    script.chmod(0o755)
    return str(script), log


def test_xfs_image_made_once(tmp_path):
    import io

    mkfs, log = _fake_mkfs(tmp_path)
    out = io.StringIO()
    img = setup.ensure_xfs_image(tmp_path / "c", out, mkfs=mkfs, size=64 << 20)
    assert img == cache.xfs_image(tmp_path / "c") and img.stat().st_size == 64 << 20
    assert img.read_bytes()[:4] == b"XFSB" and img.stat().st_blocks * 512 < (1 << 20)  # sparse
    assert "made the XFS image" in out.getvalue() and not list(img.parent.glob(".tmp-*"))
    assert (img.parent / "xfs.version").read_text() == "mkfs.xfs version 0.fake\n"
    calls = log.read_text()
    assert setup.ensure_xfs_image(tmp_path / "c", io.StringIO(), mkfs=mkfs) == img
    assert log.read_text() == calls, "mkfs ran again on a cached image"


def test_xfs_image_without_xfsprogs_or_failing(tmp_path, monkeypatch):
    import io

    monkeypatch.setattr(setup, "find_mkfs_xfs", lambda *a: None)
    out = io.StringIO()
    assert setup.ensure_xfs_image(tmp_path, out) is None and "xfsprogs" in out.getvalue()
    bad = tmp_path / "bad"
    bad.write_text("#!/bin/sh\necho 'mkfs.xfs: cannot do it' >&2\nexit 1\n")
    bad.chmod(0o755)
    with pytest.raises(setup.SetupError, match="mkfs.xfs failed: mkfs.xfs: cannot do it"):
        setup.ensure_xfs_image(tmp_path, out, mkfs=str(bad), size=1 << 20)
    assert not cache.xfs_image(tmp_path).exists() and not list(cache.xfs_image(tmp_path).parent.iterdir())


def test_real_mkfs_xfs_image(tmp_path):
    import io

    mkfs = setup.find_mkfs_xfs()
    if mkfs is None:
        pytest.skip("mkfs.xfs not installed (apt-get install xfsprogs)")
    img = setup.ensure_xfs_image(tmp_path, io.StringIO(), size=320 << 20)  # mkfs.xfs's minimum is 300 MB
    assert img is not None and img.read_bytes()[:4] == b"XFSB"


def test_missing_host_packages_names_xfsprogs():
    assert "xfsprogs" in setup.missing_host_packages(lambda _t: None)
    assert "xfsprogs" not in setup.missing_host_packages(lambda t: f"/usr/bin/{t}")


def _cached_build(root: Path, ver: str, flav: str, meta: dict[str, object], modules: bool) -> Path:
    import json

    d = root / "kernels" / ver
    d.mkdir(parents=True)
    (d / "Image").write_bytes(_fake_image())
    (d / "build.json").write_text(json.dumps({"version": ver, "flavour": flav, "granule": 4096, **meta}))
    if modules:
        (d / "modules").mkdir()
        (d / "modules" / "load.list").write_text("zram.ko\n")
    return d


def test_stale_builds_and_replan(tmp_path):
    old = _cached_build(tmp_path, "6.12.1+deb13-arm64", "arm64",
                        {"packages": {"linux-image-6.12.1+deb13-arm64-unsigned": "6.12.1-1"}}, True)
    _cached_build(tmp_path, "7.0.1+deb13-arm64", "arm64", {"missing_from_archive": ["linux-modules-7"]},
                  False)
    new = _cached_build(tmp_path, "7.3.1+deb13-arm64-16k", "arm64-16k",
                        {"guest_modules": list(setup.GUEST_MODULES)}, True)
    bb = cache.busybox_path(tmp_path)
    bb.parent.mkdir(parents=True)
    bb.write_bytes(b"busybox")
    assert setup.stale_builds(tmp_path) == [old]  # no modules (7.0) is never stale; 7.3 is current
    assert not setup.is_set_up(tmp_path)
    assert new not in setup.stale_builds(tmp_path)

    class Apt:
        version = "6.12.1-1"

        def show(self, name):
            return {"Package": name, "Version": self.version, "Size": "10"}

    plan = setup._replan(Apt(), old)  # type: ignore[arg-type]
    assert plan is not None and plan.release == "6.12.1+deb13-arm64"
    assert [p["Package"] for p in plan.packages] == ["linux-image-6.12.1+deb13-arm64-unsigned"]
    Apt.version = "6.12.2-1"  # the archive moved on: not the same build any more
    assert setup._replan(Apt(), old) is None  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- initramfs


def test_initramfs_round_trip():
    files = {"/ptlab/prog": (b"\x7fELFprog", 0o755), "/etc/x.conf": (b"a=1", 0o644)}
    mods = {"dep.ko": b"D", "zram.ko": b"Z"}
    blob = initramfs.build_initramfs(b"BUSYBOX", "#!/bin/sh\necho hi\n", files, mods, applets=("sh", "cat"))
    again = initramfs.build_initramfs(b"BUSYBOX", "#!/bin/sh\necho hi\n", files, mods, applets=("sh", "cat"))
    assert blob == again, "deterministic"
    entries = {e.name: e for e in initramfs.parse_newc(gzip.decompress(blob))}
    assert entries["init"].data == b"#!/bin/sh\necho hi\n" and entries["init"].mode & 0o111
    assert entries["bin/busybox"].data == b"BUSYBOX"
    assert stat.S_ISLNK(entries["bin/sh"].mode) and entries["bin/sh"].data == b"busybox"
    assert stat.S_ISCHR(entries["dev/console"].mode) and entries["dev/console"].rdev == (5, 1)
    assert stat.S_ISDIR(entries["ptlab"].mode)
    assert entries["ptlab/prog"].data == b"\x7fELFprog" and stat.S_IMODE(entries["ptlab/prog"].mode) == 0o755
    assert entries["lib/modules/load.list"].data == b"dep.ko\nzram.ko\n"
    names = list(entries)
    assert names.index("ptlab") < names.index("ptlab/prog")


def test_initramfs_matches_gnu_cpio(tmp_path):
    if shutil.which("cpio") is None:
        pytest.skip("cpio not installed")
    blob = gzip.decompress(initramfs.build_initramfs(b"BB", "#!/bin/sh\n", {"/a/b": (b"xyz", 0o600)}, {}, ()))
    r = subprocess.run(["cpio", "-t"], input=blob, capture_output=True, check=True)
    listed = r.stdout.decode().split()
    assert "a/b" in listed and "init" in listed and "dev/console" in listed


def test_initramfs_refuses_init_override():
    with pytest.raises(ValueError):
        initramfs.build_initramfs(b"", "", {"/init": (b"", 0o755)})


# ---------------------------------------------------------------------------- guest (pure parts)


def test_qemu_command_numa():
    b = _build(image=Path("/k/Image"))
    cmd = guest.qemu_command(b, Path("/i.gz"), Path("/o"), memory_mb=2048, cpus=2, numa_nodes=2)
    s = " ".join(cmd)
    assert "-M virt -cpu max" in s and "-kernel /k/Image" in s and "-no-reboot" in s
    assert "memory-backend-ram,id=ptmem1,size=1024M" in s
    assert "node,nodeid=0,memdev=ptmem0,cpus=0" in s and "node,nodeid=1,memdev=ptmem1,cpus=1" in s
    assert "-numa" not in guest.qemu_command(b, Path("/i"), Path("/o"), memory_mb=512, cpus=1, numa_nodes=1)


def test_qemu_command_disk():
    b = _build(image=Path("/k/Image"))
    cmd = guest.qemu_command(b, Path("/i"), Path("/o"), memory_mb=512, cpus=1, numa_nodes=1,
                             disk=Path("/c/xfs.img"))
    assert cmd[cmd.index("-drive") + 1] == "file=/c/xfs.img,format=raw,if=virtio,snapshot=on"
    assert "-drive" not in guest.qemu_command(b, Path("/i"), Path("/o"), memory_mb=512, cpus=1, numa_nodes=1)
    with pytest.raises(ValueError):
        guest.qemu_command(b, Path("/i"), Path("/o"), memory_mb=512, cpus=1, numa_nodes=1, disk=Path("/a,b"))


def test_boot_guest_missing_disk_is_one_line(tmp_path):
    if shutil.which(guest.QEMU) is None:
        pytest.skip("qemu-system-aarch64 not installed (apt-get install qemu-system-arm)")
    image = tmp_path / "Image"
    image.write_bytes(_fake_image())
    bb = tmp_path / "busybox"
    bb.write_bytes(b"bb")
    with pytest.raises(guest.GuestError, match="disk image .*nope.img is missing; run: ptlab crosscheck"):
        guest.boot_guest(_build(image=image), "true\n", busybox=bb, disk=tmp_path / "nope.img")


def test_xfs_support():
    assert _build(config={"CONFIG_XFS_FS": "y", "CONFIG_VIRTIO_BLK": "y"}).xfs_support() is True
    assert _build(config={"CONFIG_XFS_FS": "m", "CONFIG_VIRTIO_BLK": "m"}).xfs_support() is False
    assert _build(config_known=False).xfs_support() is False  # a Debian build without config or modules
    assert _build(flavour="user", config_known=False).xfs_support() is None


def test_xfs_support_from_modules(tmp_path):
    (tmp_path / "load.list").write_text("virtio_blk.ko\ncrc32c_generic.ko\nlibcrc32c.ko\nxfs.ko\n")
    b = _build(config={"CONFIG_XFS_FS": "m", "CONFIG_VIRTIO_BLK": "m"}, modules_dir=tmp_path)
    assert b.xfs_support() is True and b.module_names()[-1] == "xfs.ko"
    (tmp_path / "load.list").write_text("zram.ko\n")
    assert b.xfs_support() is False


def test_runner_refuses_file_targets_without_xfs(tmp_path, monkeypatch):
    from crosscheck import runner
    from engine.scenario import builtin

    monkeypatch.setenv("PTLAB_CACHE", str(tmp_path))
    b = _build(name="debian-7.0.1+deb13-arm64", version="7.0.1+deb13-arm64", series="7.0", config_known=False)
    [r] = runner.run_targets([builtin("check-13-file-write-faults")], b)
    assert r.verdict == "error" and "\n" not in r.error
    assert r.error.startswith("check-13-file-write-faults: maps files, which need XFS in the guest")
    assert "has no modules" in r.error
    assert runner.guest_fs({"fs.txt": b"/dev/vda /mnt/ptlab xfs rw,relatime 0 0\n"}) == "xfs"
    assert runner.guest_fs({}) == ""
    ok = _build(config={"CONFIG_XFS_FS": "y", "CONFIG_VIRTIO_BLK": "y"})
    assert "no XFS image at" in runner._no_xfs_reason(ok, True, tmp_path / "none.img")
    (tmp_path / "x.img").write_bytes(b"")
    assert runner._no_xfs_reason(ok, True, tmp_path / "x.img") is None


def test_parse_outputs_rejects_truncated():
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        data = b"x" * 5000
        ti = tarfile.TarInfo("./big")
        ti.size = len(data)
        tf.addfile(ti, io.BytesIO(data))
    assert guest.parse_outputs(buf.getvalue()) == {"big": b"x" * 5000}
    with pytest.raises(guest.GuestError):
        guest.parse_outputs(buf.getvalue()[:1000])


# ---------------------------------------------------------------------------- real boots


def _real_build(series: str) -> kernels.KernelBuild:
    if shutil.which(guest.QEMU) is None:
        pytest.skip("qemu-system-aarch64 not installed (apt-get install qemu-system-arm)")
    builds = kernels.pick(kernels.installed_kernels(), series, 4096)
    if not builds or not cache.busybox_path(cache.cache_root()).is_file():
        pytest.skip(f"no cached Debian {series} kernel (run: ptlab crosscheck --setup)")
    return builds[0]


def _qemu_pids(parent: int | None = None) -> set[int]:
    """QEMU processes (children of *parent* if given), so parallel tests and other users don't count."""
    out = set()
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if not (d / "comm").read_text().strip().startswith("qemu-system-aa"):
                    continue
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if parent is None or ppid == parent:
                out.add(int(d.name))
    return out


def test_boot_real_612(tmp_path):
    build = _real_build("6.12")
    script = "uname -r\nuname -r > /out/uname.txt\nmkdir -p /out/sub && echo deep > /out/sub/f\nexit 3\n"
    run = guest.boot_guest(build, script, {"/ptlab/data.bin": (b"\x01\x02", 0o644)}, memory_mb=512,
                           timeout_s=240, keep_dir=tmp_path / "keep")
    assert run.outputs["uname.txt"].decode().strip() == build.version
    assert run.outputs["sub/f"] == b"deep\n"
    assert build.version in run.console and run.exit_status == 3
    assert "TLB range maintenance instructions" in run.cpu_features
    assert 0 < run.boot_seconds < 240 and run.run_seconds >= 0
    assert (tmp_path / "keep" / "console.log").read_text() == run.console
    assert (tmp_path / "keep" / "out" / "uname.txt").is_file()
    assert not _qemu_pids(os.getpid())


def test_boot_real_612_xfs_disk_is_not_modified(tmp_path):
    build = _real_build("6.12")
    img = cache.xfs_image(cache.cache_root())
    if not img.is_file():
        pytest.skip("no cached XFS image (run: ptlab crosscheck --setup)")
    if not build.xfs_support():
        pytest.skip("the cached 6.12 build has no xfs/virtio_blk modules (re-run: ptlab crosscheck --setup)")
    before = (img.stat().st_mtime_ns, img.stat().st_blocks, img.read_bytes()[:65536])
    script = ("mkdir -p /mnt/x && mount -t xfs /dev/vda /mnt/x && grep ' /mnt/x ' /proc/mounts > /out/m\n"
              "dd if=/dev/zero of=/mnt/x/f bs=1M count=8 2>/dev/null && sync && ls -l /mnt/x/f > /out/f\n")
    run = guest.boot_guest(build, script, memory_mb=512, timeout_s=240, disk=img)
    assert run.outputs["m"].split()[:3] == [b"/dev/vda", b"/mnt/x", b"xfs"], run.console[-2000:]
    assert b"8388608" in run.outputs["f"]
    assert (img.stat().st_mtime_ns, img.stat().st_blocks, img.read_bytes()[:65536]) == before


def test_hanging_guest_is_killed():
    build = _real_build("6.12")
    t0 = time.monotonic()
    with pytest.raises(guest.GuestError) as e:
        guest.boot_guest(build, "echo sleeping\nsleep 1000\n", memory_mb=512, timeout_s=25)
    assert time.monotonic() - t0 < 40
    msg = str(e.value)
    assert msg.startswith("guest did not finish within 25 s; last console line:") and "\n" not in msg
    assert not _qemu_pids(os.getpid()), "a QEMU process was left running"


def test_panicking_guest_is_one_line_error():
    build = _real_build("6.12")
    with pytest.raises(guest.GuestError) as e:
        guest.boot_guest(build, "true\n", memory_mb=512, timeout_s=120, append="rdinit=/nonexistent")
    assert str(e.value).startswith("guest kernel panic:") and "\n" not in str(e.value)
    assert not _qemu_pids(os.getpid())


# A child started from a non-interactive shell's background job inherits an ignored SIGINT,
# and Python then installs no KeyboardInterrupt handler: the drivers restore it, as a
# terminal's Ctrl-C would find it.
_SIGINT_AS_A_TERMINAL = "import signal\nsignal.signal(signal.SIGINT, signal.default_int_handler)\n"


def _start_with_qemu(tmp_path: Path, body: str) -> tuple[subprocess.Popen[bytes], int]:
    """Run a driver script (after _SIGINT_AS_A_TERMINAL); return it and its QEMU's pid."""
    driver = tmp_path / "driver.py"
    driver.write_text(_SIGINT_AS_A_TERMINAL + body)
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.Popen([sys.executable, str(driver)], cwd=root, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(root)})
    deadline = time.monotonic() + 60
    child = None
    while child is None and time.monotonic() < deadline and proc.poll() is None:
        child = next(iter(_qemu_pids(proc.pid)), None)
        time.sleep(0.2)
    if child is None:
        proc.kill()
        _, err = proc.communicate()
        raise AssertionError(f"QEMU never started: {err.decode()[-500:]}")
    time.sleep(1)
    return proc, child


def _reap(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.communicate()  # waits and closes the pipes


def _gone_soon(pid: int, within_s: float = 10.0) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return True
        if state == "Z":  # killed, waiting for a parent's wait()
            return True
        time.sleep(0.1)
    return False


_BOOT_AND_SLEEP = ("from crosscheck import guest, kernels\n"
                   "b = kernels.pick(kernels.installed_kernels(), '6.12', 4096)[0]\n")


def test_keyboard_interrupt_kills_qemu(tmp_path):
    _real_build("6.12")
    proc, child = _start_with_qemu(tmp_path, "import sys\n" + _BOOT_AND_SLEEP + (
        "try:\n    guest.boot_guest(b, 'sleep 1000\\n', memory_mb=512, timeout_s=600)\n"
        "except KeyboardInterrupt:\n    sys.exit(42)\n"))
    try:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
        assert proc.returncode == 42
        assert not Path(f"/proc/{child}").exists(), "QEMU outlived the interrupted boot_guest"
    finally:
        _reap(proc)


def test_sigterm_to_ptlab_crosscheck_kills_qemu_and_exits_143(tmp_path):
    """tui/cli.py: SIGTERM unwinds like Ctrl-C (boot_guest's clean-up runs), one line, 143."""
    _real_build("6.12")
    proc, child = _start_with_qemu(tmp_path, (
        "import sys\nfrom tui.cli import main\n"
        "sys.exit(main(['crosscheck', 'check-01-anon-64k-fault', '--debian', '6.12']))\n"))
    try:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        assert (proc.returncode, err.decode().strip().splitlines()[-1:]) == (143, ["ptlab: terminated"])
        assert not Path(f"/proc/{child}").exists(), "QEMU outlived the terminated crosscheck"
    finally:
        _reap(proc)


def test_a_killed_ptlab_takes_its_qemu_with_it(tmp_path):
    """crosscheck/guest.py _die_with_parent(): SIGKILL reaches no handler, PR_SET_PDEATHSIG
    makes the kernel kill QEMU all the same."""
    _real_build("6.12")
    proc, child = _start_with_qemu(tmp_path, _BOOT_AND_SLEEP + (
        "guest.boot_guest(b, 'sleep 1000\\n', memory_mb=512, timeout_s=600)\n"))
    try:
        proc.kill()
        proc.communicate(timeout=30)
        assert _gone_soon(child), "QEMU outlived its killed parent"
    finally:
        _reap(proc)
        if Path(f"/proc/{child}").exists():
            os.kill(child, signal.SIGKILL)


def test_setup_is_offline_when_cached(tmp_path, monkeypatch):
    import io

    builds = (("6.12.1+deb13-arm64", "arm64", 4096), ("7.0.1+deb13-arm64", "arm64", 4096),
              ("7.3.1+deb13-arm64-16k", "arm64-16k", 16384), ("7.3.1+deb13-arm64", "arm64", 4096))
    for ver, flav, gran in builds:
        d = tmp_path / "kernels" / ver
        d.mkdir(parents=True)
        (d / "Image").write_bytes(_fake_image())
        (d / "build.json").write_text(f'{{"version": "{ver}", "flavour": "{flav}", "granule": {gran}}}')
    bb = cache.busybox_path(tmp_path)
    bb.parent.mkdir(parents=True)
    bb.write_bytes(b"busybox")

    def no_network(*_a, **_k):
        raise AssertionError("setup went online although everything is cached")

    monkeypatch.setattr(setup, "_fetch_all", no_network)
    assert setup.is_set_up(tmp_path)
    (tmp_path / "kernels" / "7.3.1+deb13-arm64" / "build.json").unlink()  # no 7.x 4K build with modules
    assert not setup.is_set_up(tmp_path)
    (tmp_path / "kernels" / "7.3.1+deb13-arm64" / "build.json").write_text(
        '{"version": "7.3.1+deb13-arm64", "flavour": "arm64", "granule": 4096}')
    monkeypatch.setattr(setup, "ensure_xfs_image", lambda *_a, **_k: None)
    monkeypatch.setattr(setup, "missing_host_packages", lambda: [])
    out = io.StringIO()
    assert setup.run_setup(tmp_path, stream=out) == 0
    assert "cache ready" in out.getvalue() and "7.3.1+deb13-arm64-16k (16K pages)" in out.getvalue()
    monkeypatch.setattr(setup, "missing_host_packages", lambda: ["qemu-system-arm"])
    out = io.StringIO()
    assert setup.run_setup(tmp_path, stream=out) == 1
    last = out.getvalue().splitlines()[-1]
    assert last == "crosscheck: install the host packages: apt-get install qemu-system-arm"


def test_plan_kernels_takes_the_newest_4k_build_too():
    """7.0's modules are gone from the archive, so the newest 4K build (with zram and XFS) is
    fetched as well; when the newest 4K build is the 7.0 one, it is planned once."""
    class Apt:
        def show(self, name):
            return {"Package": name, "Version": "1", "Size": "10", "Depends": ""}

    names = ["linux-image-6.12.9+deb13-arm64-unsigned", "linux-image-6.12.10+deb13-arm64-unsigned",
             "linux-image-7.0.9+deb13-arm64", "linux-image-7.0.13+deb13-arm64",
             "linux-image-7.3.4+deb13-arm64", "linux-image-7.3.4+deb13-arm64-16k",
             "linux-image-7.2.12+deb13-arm64"]
    plans = setup.plan_kernels(Apt(), names)  # type: ignore[arg-type]
    assert [(p.label, p.release, p.flavour) for p in plans] == [
        ("6.12 4K", "6.12.10+deb13-arm64", "arm64"), ("7.0 4K", "7.0.13+deb13-arm64", "arm64"),
        ("newest 16K", "7.3.4+deb13-arm64-16k", "arm64-16k"), ("newest 4K", "7.3.4+deb13-arm64", "arm64")]
    older = [n for n in names if not n.startswith(("linux-image-7.3", "linux-image-7.2"))]
    older.append("linux-image-7.0.13+deb13-arm64-16k")
    assert [p.release for p in setup.plan_kernels(Apt(), older)] == [  # type: ignore[arg-type]
        "6.12.10+deb13-arm64", "7.0.13+deb13-arm64", "7.0.13+deb13-arm64-16k"]


def test_guest_runs_without_damon():
    """DAMON_STAT (mm/damon/stat.c, on by default in Debian's 7.x builds) clears access flags of
    sampled pages through damon_pa_mkold() every few ms: the guest must not run it."""
    b = _build(image=Path("/k/Image"))
    cmd = guest.qemu_command(b, Path("/i"), Path("/o"), memory_mb=512, cpus=1, numa_nodes=1)
    assert "damon_stat.enabled=N" in cmd[cmd.index("-append") + 1].split()
    script = guest_script(1)
    assert "for m in damon_stat damon_reclaim damon_lru_sort; do" in script
    assert "echo N > /sys/module/$m/parameters/enabled" in script
    # a kdamond still running is a setup error (every target: error), not a divergence
    assert "/proc/[0-9]*/comm > /out/kdamond.txt" in script
    assert '[ -s /out/kdamond.txt ] && echo "a kdamond is running' in script


def test_stack_probes_put_a_stacktrace_trigger_on_the_named_functions(monkeypatch):
    from crosscheck.runner import CrosscheckError, stack_probes

    monkeypatch.setenv("PTLAB_XC_STACKS", "contpte_ptep_get_lockless,try_to_migrate_one")
    names = stack_probes()
    assert names == ("contpte_ptep_get_lockless", "try_to_migrate_one")
    script = guest_script(1, extra_probes=("try_to_migrate_one", "rmap_walk"), stack_probes=names)
    assert 'STACKS=" contpte_ptep_get_lockless try_to_migrate_one "' in script
    assert 'case "$STACKS" in *" $f "*) echo stacktrace > $T/events/ptlab/c$i/trigger' in script
    assert "echo stacktrace > $T/events/ptlab/x0/trigger" in script  # try_to_migrate_one
    assert "ptlab/x1/trigger" not in script  # rmap_walk: marked, no stack
    assert 'STACKS=" "' in guest_script(1)
    monkeypatch.setenv("PTLAB_XC_STACKS", "x; reboot")
    with pytest.raises(CrosscheckError, match="not a kernel symbol name"):
        stack_probes()


def test_stale_guest_directories_of_killed_runs_are_swept(tmp_path):
    """crosscheck/guest.py sweep_stale_guest_dirs(): a SIGKILLed ptlab leaves its
    ptlab-guest-* directory behind; the next boot removes it when the owner file names a
    process that is gone, and leaves everything else alone."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    tag = guest._owner_tag(dead.pid)
    dead.wait()
    assert tag is not None and guest._owner_tag(dead.pid) is None
    stale = tmp_path / "ptlab-guest-stale"
    stale.mkdir()
    (stale / "owner").write_text(tag)
    (stale / "initramfs.cpio.gz").write_bytes(b"x" * 100)
    live = tmp_path / "ptlab-guest-live"
    live.mkdir()
    (live / "owner").write_text(guest._owner_tag(os.getpid()) or "")
    recycled = tmp_path / "ptlab-guest-recycled"  # our pid, another start time: not ours
    recycled.mkdir()
    (recycled / "owner").write_text(f"{os.getpid()} 1")
    unowned = tmp_path / "ptlab-guest-unowned"  # an older ptlab's, or anybody's: left alone
    unowned.mkdir()
    other = tmp_path / "somebody-else"
    other.mkdir()
    (other / "owner").write_text(tag)
    link = tmp_path / "ptlab-guest-link"
    link.symlink_to(stale)
    assert guest.sweep_stale_guest_dirs(tmp_path) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "ptlab-guest-link", "ptlab-guest-live", "ptlab-guest-unowned", "somebody-else"]
    assert guest.sweep_stale_guest_dirs(tmp_path / "missing") == 0
