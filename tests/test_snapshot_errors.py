# SPDX-License-Identifier: GPL-2.0-only
"""Snapshots: every way a save or a load can fail ends in one clear line, and a save
never damages the file that was there before."""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import stat
import tempfile
from pathlib import Path

import pytest
from snapshot_samples import header, load_all, op_records, state

from snapshots import (
    FileSystem,
    SnapshotError,
    SnapshotFormatError,
    SnapshotIOError,
    SnapshotWriteError,
    SnapshotWriter,
    open_snapshot,
    save_snapshot,
)

OLD = b"the previous file, which must survive"


class FaultyFS(FileSystem):
    """Fails one kind of call with ``err`` (a write only once ``after`` bytes have been written)."""

    def __init__(self, call: str, err: int, after: int = 0) -> None:
        self.call, self.err, self.after = call, err, after
        self.written = 0

    def _fail(self, call: str, path: str = "") -> None:
        if call == self.call:
            raise OSError(self.err, os.strerror(self.err), path or None)

    def open(self, path, flags, mode):
        self._fail("open", path)
        return super().open(path, flags, mode)

    def write(self, fd, data):
        if self.call == "write" and self.written + len(data) > self.after:
            n = max(0, self.after - self.written)
            if n:  # a short write first, like a disk that fills up in the middle of a buffer
                self.written += super().write(fd, data[:n])
                return n
            raise OSError(self.err, os.strerror(self.err))
        n = super().write(fd, data)
        self.written += n
        return n

    def fsync(self, fd):
        self._fail("fsync")
        super().fsync(fd)

    def close(self, fd):
        super().close(fd)
        self._fail("close")

    def replace(self, src, dst):
        self._fail("replace", dst)
        super().replace(src, dst)

    def fsync_dir(self, path):
        self._fail("fsync_dir", path)
        super().fsync_dir(path)


def save(path, fs=None, n=3000):
    save_snapshot(path, header(), op_records(n), {0: state(0), n: state(n)}, fs=fs)


def one_line(e: BaseException, name: str) -> str:
    msg = str(e)
    assert "\n" not in msg and msg.startswith(name), msg
    return msg


def no_partial(path) -> bool:
    return not os.path.exists(str(path) + ".partial")


# --- the file system fails ------------------------------------------------------------------------------


@pytest.mark.parametrize("call,err,reason", [
    ("write", errno.ENOSPC, "no space left on device"),
    ("write", errno.EDQUOT, "disk quota exceeded"),
    ("write", errno.EIO, "I/O error"),
    ("fsync", errno.ENOSPC, "no space left on device"),
    ("fsync", errno.EIO, "I/O error"),
    ("open", errno.EACCES, "permission denied"),
    ("open", errno.EPERM, "permission denied"),
    ("open", errno.EROFS, "read-only file system"),
    ("replace", errno.EBUSY, "device or resource busy"),
    ("replace", errno.EXDEV, "invalid cross-device link"),
])
def test_failed_save_keeps_the_previous_file(tmp_path, call, err, reason):
    p = tmp_path / "x.ptsnap"
    p.write_bytes(OLD)
    with pytest.raises(SnapshotWriteError) as e:
        save(p, FaultyFS(call, err, after=50_000))
    msg = one_line(e.value, str(p))
    assert msg == f"{p}: cannot save: {reason} (the previous file is unchanged)"
    assert e.value.exit_code == 2 and e.value.errno == err
    assert p.read_bytes() == OLD and no_partial(p)


def test_failed_save_of_a_new_file_leaves_nothing(tmp_path):
    p = tmp_path / "new.ptsnap"
    with pytest.raises(SnapshotWriteError, match=r"new\.ptsnap: cannot save: no space left on device "
                                                 r"\(nothing was saved\)$"):
        save(p, FaultyFS("write", errno.ENOSPC, after=1000))
    assert not p.exists() and no_partial(p)


def test_disk_fills_up_during_a_streaming_run(tmp_path):
    p = tmp_path / "run.ptsnap"
    p.write_bytes(OLD)
    w = SnapshotWriter(p, header(), commit_every=100, batch_size=50, fs=FaultyFS("write", errno.ENOSPC,
                                                                               after=30_000))
    with pytest.raises(SnapshotWriteError, match="no space left on device"):
        for rec in op_records(5000):
            w.add_op(*rec)
    assert w.closed and p.read_bytes() == OLD and no_partial(p)
    with pytest.raises(ValueError, match="closed"):
        w.add_op(*op_records(1)[0])
    w.close()  # closing a failed writer is harmless


@pytest.mark.parametrize("call", ["fsync_dir", "close"])
def test_failure_after_the_rename(tmp_path, call):
    p = tmp_path / "x.ptsnap"
    with pytest.raises(SnapshotWriteError, match=r"x\.ptsnap: saved, but finishing it failed: I/O error$"):
        save(p, FaultyFS(call, errno.EIO), n=10)
    assert len(load_all(p)[1]) == 10 and no_partial(p)  # the file is in place and complete


def test_einval_from_directory_fsync_is_ignored_by_the_real_shim(tmp_path, monkeypatch):
    calls = []

    def fake_fsync(fd):
        calls.append(fd)
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(os, "fsync", fake_fsync)
    p = tmp_path / "x.ptsnap"
    save(p, n=10)
    assert len(calls) >= 2 and len(load_all(p)[1]) == 10


# --- the target is not a plain file ---------------------------------------------------------------------


def test_target_is_a_directory(tmp_path):
    p = tmp_path / "dir.ptsnap"
    p.mkdir()
    (p / "inside").write_text("keep me")
    with pytest.raises(SnapshotWriteError) as e:
        save(p)
    assert one_line(e.value, str(p)) == f"{p}: cannot save: it is a directory (nothing was saved)"
    assert (p / "inside").read_text() == "keep me" and no_partial(p)


def test_target_is_a_fifo(tmp_path):
    p = tmp_path / "fifo.ptsnap"
    os.mkfifo(p)
    with pytest.raises(SnapshotWriteError, match="it exists and is not a regular file"):
        save(p)
    assert stat.S_ISFIFO(os.lstat(p).st_mode)


def test_directory_does_not_exist(tmp_path):
    p = tmp_path / "no" / "such" / "x.ptsnap"
    with pytest.raises(SnapshotWriteError, match="its directory does not exist"):
        save(p)


def test_parent_is_a_file(tmp_path):
    (tmp_path / "f").write_text("")
    with pytest.raises(SnapshotWriteError, match="not a directory"):
        save(tmp_path / "f" / "x.ptsnap")


def test_saving_through_a_symlink_replaces_the_file_it_points_to(tmp_path):
    real = tmp_path / "real.ptsnap"
    real.write_bytes(OLD)
    link = tmp_path / "link.ptsnap"
    link.symlink_to(real)
    save(link, n=20)
    assert link.is_symlink() and len(load_all(real)[1]) == 20


def test_a_symlink_in_place_of_the_partial_file_is_refused(tmp_path):
    p = tmp_path / "x.ptsnap"
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    os.symlink(victim, str(p) + ".partial")
    with pytest.raises(SnapshotWriteError, match="is a symbolic link"):
        save(p)
    assert victim.read_bytes() == b"precious"


def test_the_mode_of_the_previous_file_is_kept(tmp_path):
    p = tmp_path / "x.ptsnap"
    p.write_bytes(OLD)
    os.chmod(p, 0o640)
    save(p, n=5)
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o640


def test_two_writers_on_one_file(tmp_path):
    p = tmp_path / "x.ptsnap"
    first = SnapshotWriter(p, header())
    locked = r"another ptlab is writing it \(.*x\.ptsnap\.partial is locked\)"
    with pytest.raises(SnapshotWriteError, match=locked):
        SnapshotWriter(p, header())
    first.add_op(*op_records(1)[0])
    first.close()
    assert len(load_all(p)[1]) == 1


def test_a_stale_partial_file_from_a_crash_is_reused(tmp_path):
    p = tmp_path / "x.ptsnap"
    (tmp_path / "x.ptsnap.partial").write_bytes(b"left over by a killed ptlab" * 1000)
    save(p, n=7)
    assert len(load_all(p)[1]) == 7 and no_partial(p)


# --- real permissions -----------------------------------------------------------------------------------


def _as_nobody(fn):
    """Run ``fn()`` in a child process with the uid/gid of nobody; returns what it returns (a str)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            out = fn()
        except BaseException as e:  # noqa: BLE001
            out = f"{type(e).__name__}: {e}"
        os.write(w, out.encode())
        os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        out = f.read().decode()
    os.waitpid(pid, 0)
    return out


def _attempt_save(path) -> str:
    try:
        save(path, n=10)
    except SnapshotError as e:
        return str(e)
    return "saved"


@pytest.fixture
def open_dir():
    """A directory everybody may enter (pytest's tmp_path is private to its owner)."""
    d = tempfile.mkdtemp(prefix="ptlab-snap-")
    os.chmod(d, 0o755)
    yield Path(d)
    shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("mode", [0o555, 0o755])
def test_real_permission_denied_and_read_only_directory(open_dir, mode):
    d = open_dir / "d"
    d.mkdir()
    p = d / "x.ptsnap"
    p.write_bytes(OLD)
    if os.geteuid() == 0:
        os.chmod(d, mode)  # owned by root: nobody may not write in it, whatever the mode
        out = _as_nobody(lambda: _attempt_save(p))
    else:
        os.chmod(d, 0o555)  # a read-only directory for its owner
        try:
            out = _attempt_save(p)
        finally:
            os.chmod(d, 0o755)
    assert out == f"{p}: cannot save: permission denied (the previous file is unchanged)"
    assert p.read_bytes() == OLD and no_partial(p)


# --- reading fails --------------------------------------------------------------------------------------


def test_reading_errors_are_one_line(tmp_path):
    missing = tmp_path / "missing.ptsnap"
    with pytest.raises(SnapshotIOError) as e:
        open_snapshot(missing)
    assert one_line(e.value, str(missing)).endswith("cannot read: no such file")
    with pytest.raises(SnapshotIOError, match="cannot read: it is a directory"):
        open_snapshot(tmp_path)
    cases = {
        b"": "empty file, not a ptlab snapshot",
        b"\x89PTS": "truncated before its header, nothing to recover",
        b"PK\x03\x04 a zip file, not a snapshot": "not a ptlab snapshot (bad magic)",
        b"\x89PTSNAP\n\x03\x00\x00\x00\x00\x00\x00\x00": "damaged preamble (CRC mismatch)",
    }
    p = tmp_path / "bad.ptsnap"
    for data, msg in cases.items():
        p.write_bytes(data)
        with pytest.raises(SnapshotFormatError) as e:
            open_snapshot(p)
        assert one_line(e.value, str(p)) == f"{p}: {msg}"
    good = tmp_path / "good.ptsnap"
    save(good, n=5)
    p.write_bytes(good.read_bytes()[:40])
    with pytest.raises(SnapshotFormatError, match="truncated inside its header, nothing to recover"):
        open_snapshot(p)


def test_unreadable_file(open_dir):
    p = open_dir / "secret.ptsnap"
    save(p, n=5)
    os.chmod(p, 0o000)
    try:
        if os.geteuid() == 0:
            out = _as_nobody(lambda: _try_open(p))
        else:
            out = _try_open(p)
    finally:
        os.chmod(p, 0o644)
    assert out == f"{p}: cannot read: permission denied"


def _try_open(p) -> str:
    try:
        open_snapshot(p).close()
    except SnapshotError as e:
        return str(e)
    return "opened"


def test_file_names_are_printed_on_one_line(tmp_path):
    p = tmp_path / "two\nlines.ptsnap"
    with pytest.raises(SnapshotIOError) as e:
        open_snapshot(p)
    assert "\n" not in str(e.value) and "two\\nlines.ptsnap" in str(e.value)


def test_lock_is_released_on_abort_and_close(tmp_path):
    p = tmp_path / "x.ptsnap"
    SnapshotWriter(p, header()).abort()
    w = SnapshotWriter(p, header())  # not locked out by the aborted one
    w.close()
    fd = os.open(p, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # nobody holds the finished file
    finally:
        os.close(fd)


def test_reading_a_fifo_or_a_device_does_not_hang(tmp_path):
    fifo = tmp_path / "fifo.ptsnap"
    os.mkfifo(fifo)
    with pytest.raises(SnapshotIOError, match=r"fifo\.ptsnap: cannot read: not a regular file"):
        open_snapshot(fifo)
    with pytest.raises(SnapshotIOError, match="not a regular file"):
        open_snapshot("/dev/zero")


def test_close_is_idempotent(tmp_path):
    p = tmp_path / "x.ptsnap"
    save(p, n=3)
    snap = open_snapshot(p)
    snap.close()
    snap.close()
    with pytest.raises(SnapshotIOError, match="closed"):
        snap.checkpoint_for(3)


def test_a_missing_file_with_a_partial_one_says_how_to_recover(tmp_path):
    p = tmp_path / "run.ptsnap"
    w = SnapshotWriter(p, header(), commit_every=10)
    w.add_ops(op_records(25))
    hint = r"no such file \(a save that did not finish left .*run\.ptsnap\.partial: open that to recover it\)"
    with pytest.raises(SnapshotIOError, match=r"run\.ptsnap: cannot read: " + hint):
        open_snapshot(p)
    with open_snapshot(w.partial_path) as snap:
        assert len(snap.ops) == 20 and snap.truncated
    w.abort()


def test_a_file_renamed_away_while_locking_is_not_truncated(tmp_path):
    """Another writer finishes (renames its .partial over the target) between our open and our lock:
    we must not truncate what is now its finished file."""
    p = tmp_path / "x.ptsnap"
    other = b"the other writer's finished snapshot"
    (tmp_path / "x.ptsnap.partial").write_bytes(other)

    class RaceFS(FaultyFS):
        raced = False

        def lock(self, fd):
            if not self.raced:
                self.raced = True
                os.replace(str(p) + ".partial", p)  # the other writer's rename
            super().lock(fd)

    with pytest.raises(SnapshotWriteError, match="no space left"):
        save(p, RaceFS("write", errno.ENOSPC, after=100))
    assert p.read_bytes() == other and no_partial(p)


def test_python_m_snapshots_lists_the_records(tmp_path, capsys):
    from snapshots.__main__ import main

    p = tmp_path / "x.ptsnap"
    save(p, n=2000)
    assert main([str(p)]) == 0
    out = capsys.readouterr().out
    assert "format v3, 2000 ops, 2 checkpoints" in out and "ops 1024-1999" in out and "final (index at" in out
    data = bytearray(p.read_bytes())
    data[len(data) // 3] ^= 1  # inside an op batch
    p.write_bytes(bytes(data[:-5]))
    assert main([str(p)]) == 0  # still opens (recovers), and shows the damage
    out = capsys.readouterr().out
    assert "truncated" in out and "crc BAD" in out and "runs past the end" in out
    assert main([str(tmp_path / "missing.ptsnap")]) == 2
