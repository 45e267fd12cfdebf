# SPDX-License-Identifier: GPL-2.0-only
"""Saving fails: end to end through ``ptlab run --save`` and the TUI's save
action (issue #9, item 3).

No space left on device, I/O errors, a read-only file system, permission
denied (for real, as a non-root child), a directory in the way: one clear
line, exit status 2 (or an error notification in the TUI, which carries on),
the previous file byte for byte intact and no ``.partial`` file left behind.
The container's own handling is tested in test_snapshot_errors.py; this is
the path from the user's command to it.
"""

from __future__ import annotations

import asyncio
import atexit
import errno
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from test_snapshot_errors import FaultyFS
from tui_support import settle

import snapshots.fsio
from tui.cli import main

# A tiny scenario with little memory (checkpoints of 4 GiB of page metadata take a while to
# compress), in a directory anybody may read (the permission test runs as nobody).
_DIR = Path(tempfile.mkdtemp(prefix="ptlab-save-scn-"))
# every xdist worker imports this module, but only one may run its tests: each removes its own
atexit.register(shutil.rmtree, _DIR, True)
os.chmod(_DIR, 0o755)
SCENARIO = str(_DIR / "small.pts")
Path(SCENARIO).write_text("memory 64M\nmthp 64K=always\nmmap buf 256K\ntouch buf write\n"
                          "mprotect buf +60K 4K r\nfork\n")
os.chmod(SCENARIO, 0o644)


@pytest.fixture(scope="module", autouse=True)
def _cleanup():
    yield
    shutil.rmtree(_DIR, ignore_errors=True)


def _previous(path: Path) -> bytes:
    assert main(["run", SCENARIO, "--save", str(path)]) == 0
    return path.read_bytes()


FAULTS = [
    (FaultyFS("write", errno.ENOSPC, after=3000), "no space left on device"),
    (FaultyFS("write", errno.ENOSPC, after=0), "no space left on device"),
    (FaultyFS("write", errno.EDQUOT, after=100), "disk quota exceeded"),
    (FaultyFS("fsync", errno.EIO), "I/O error"),
    (FaultyFS("open", errno.EROFS), "read-only file system"),
    (FaultyFS("open", errno.EACCES), "permission denied"),
    (FaultyFS("replace", errno.EXDEV), "invalid cross-device link"),
]


@pytest.mark.parametrize("fs,reason", FAULTS, ids=[f"{f.call}-{errno.errorcode[f.err]}" for f, _ in FAULTS])
def test_run_save_fails_cleanly_and_keeps_the_previous_file(tmp_path, capsys, monkeypatch, fs, reason):
    p = tmp_path / "x.ptsnap"
    old = _previous(p)
    capsys.readouterr()
    fs.written = 0
    monkeypatch.setattr(snapshots.fsio, "OS_FS", fs)
    code = main(["run", SCENARIO, "--save", str(p), "--json"])
    out, err = capsys.readouterr()
    assert code == 2
    assert err.splitlines() == [f"ptlab: {p}: cannot save: {reason} (the previous file is unchanged)"]
    assert p.read_bytes() == old and not Path(f"{p}.partial").exists()
    assert os.listdir(tmp_path) == ["x.ptsnap"]


def test_run_save_of_a_new_file_on_a_full_disk_leaves_nothing(tmp_path, capsys, monkeypatch):
    p = tmp_path / "new.ptsnap"
    monkeypatch.setattr(snapshots.fsio, "OS_FS", FaultyFS("write", errno.ENOSPC, after=500))
    assert main(["run", SCENARIO, "--save", str(p)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"ptlab: {p}: cannot save: no space left on device (nothing was saved)"]
    assert os.listdir(tmp_path) == []


def test_run_save_onto_a_directory(tmp_path, capsys):
    (tmp_path / "d.ptsnap").mkdir()
    assert main(["run", SCENARIO, "--save", str(tmp_path / "d.ptsnap")]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"ptlab: {tmp_path / 'd.ptsnap'}: cannot save: it is a directory (nothing was saved)"]


def _as_nobody(fn) -> str:  # type: ignore[no-untyped-def]
    """fn() in a forked child running as nobody; returns its string result."""
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


@pytest.mark.parametrize("mode", [0o555, 0o755])
def test_run_save_permission_denied_for_real(mode, capsys):
    """A directory the user may not write in (read-only, or somebody else's)."""
    d = Path(tempfile.mkdtemp(prefix="ptlab-save-"))
    try:
        os.chmod(d, 0o755)
        (d / "d").mkdir()
        p = d / "d" / "x.ptsnap"
        old = _previous(p)  # also loads every module the save path needs (nobody cannot read ~root)
        capsys.readouterr()

        def attempt() -> str:
            import contextlib
            import io

            err = io.StringIO()
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                code = main(["run", SCENARIO, "--save", str(p)])
            return f"{code} {err.getvalue()}"

        if os.geteuid() == 0:
            os.chmod(d / "d", mode)  # root's: nobody may not write in it, whatever the mode
            out = _as_nobody(attempt)
        else:
            os.chmod(d / "d", 0o555)
            try:
                out = attempt()
            finally:
                os.chmod(d / "d", 0o755)
        assert out == f"2 ptlab: {p}: cannot save: its directory is not writable (nothing was saved)\n"
        assert p.read_bytes() == old and not Path(f"{p}.partial").exists()
    finally:
        shutil.rmtree(d, ignore_errors=True)


# --- the TUI's save action -------------------------------------------------------------------------
def test_tui_save_failures_are_one_line_and_the_app_carries_on(tmp_path, monkeypatch):
    from tui.app import PtlabApp
    from tui.targets import open_target

    p = tmp_path / "x.ptsnap"
    old = _previous(p)
    s = open_target(SCENARIO)

    async def save_as(app, pilot, path: Path, dialog: bool = False) -> str:  # type: ignore[no-untyped-def]
        if dialog:  # ctrl+s, the path, enter
            await pilot.press("ctrl+s")
            await settle(app, pilot)
            assert app.screen.id == "dialog-save"
            app.screen.query_one("#dialog-input").value = str(path)
            await pilot.press("enter")
            await settle(app, pilot)
            if app.screen.id == "dialog-overwrite":  # the file exists: the TUI asks first; replace it
                await pilot.press("enter")
        else:  # what the dialog calls (a screen change costs a second of CSS work)
            app.main.save_snapshot(str(path))
        await settle(app, pilot)
        return app.main.messages[-1]

    async def body() -> None:
        app = PtlabApp(s, use_keymap=False)
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(app, pilot)
            main_screen = app.main
            for i, (fs, reason) in enumerate(FAULTS):
                fs.written = 0
                monkeypatch.setattr(snapshots.fsio, "OS_FS", fs)
                msg = await save_as(app, pilot, p, dialog=i == 0)
                assert msg == f"save failed: {p}: cannot save: {reason} (the previous file is unchanged)"
                assert p.read_bytes() == old and not Path(f"{p}.partial").exists()
                assert app.screen is main_screen
            monkeypatch.setattr(snapshots.fsio, "OS_FS", snapshots.fsio.FileSystem())
            (tmp_path / "dir.ptsnap").mkdir()
            msg = await save_as(app, pilot, tmp_path / "dir.ptsnap")
            assert msg == (f"save failed: {tmp_path / 'dir.ptsnap'}: cannot save: it is a directory "
                           "(nothing was saved)")
            # the app carries on: step, then a save that works
            await pilot.press("n")
            await settle(app, pilot)
            assert s.position.op == 1
            assert await save_as(app, pilot, p) == f"saved {p}"
            assert p.read_bytes() != old and s.position.op == 1
            assert app.main.ctl.errors == []

    asyncio.run(body())
