# SPDX-License-Identifier: GPL-2.0-only
"""The TUI's export (x) and decode (v): what `ptlab show` and `ptlab decode`
print, reachable at any step of a session, written atomically."""

from __future__ import annotations

import json
import os

from test_tui_app import press, run

from engine.decode import decode
from tui.export_io import find_process, render_tables
from tui.targets import open_target


def test_export_each_format_matches_ptlab_show_at_that_step(tmp_path):
    s = open_target("demo")

    async def body(app, pilot):
        main = app.main
        await press(app, pilot, "n", "n", "n")
        pos = main.session.position
        for ext in ("txt", "json", "csv"):
            path = str(tmp_path / f"demo.{ext}")
            await press(app, pilot, "x")
            assert app.screen.id == "dialog-export"
            app.screen.query_one("#dialog-input").value = path
            await press(app, pilot, "enter")
            assert app.screen is main
            assert main.messages[-1].endswith(f"exported to {path} ({ {'txt': 'ptdump'}.get(ext, ext)})")
        # the files hold what show renders for this process at this step
        ref = open_target("demo")
        ref.seek(pos)
        proc = find_process(ref, main.model.process)
        assert (tmp_path / "demo.txt").read_text() == render_tables(ref, proc, "ptdump", ref.name)
        assert (tmp_path / "demo.csv").read_text() == render_tables(ref, proc, "csv", ref.name)
        d = json.loads((tmp_path / "demo.json").read_text())
        assert d["step"] == str(pos) and d["process"] == proc.name
        assert d == json.loads(render_tables(ref, proc, "json", ref.name)) | {"target": d["target"]}
        assert d["summary"]["entries"] > 0
        txt = (tmp_path / "demo.txt").read_text()
        assert txt.startswith(f"# demo: {proc.name} at step {pos}")
        # an SVG screenshot of what is on screen
        svg = str(tmp_path / "screen.svg")
        await press(app, pilot, "x")
        app.screen.query_one("#dialog-input").value = svg
        await press(app, pilot, "enter")
        assert main.messages[-1] == f"screenshot saved to {svg}"
        body_svg = (tmp_path / "screen.svg").read_text()
        assert body_svg.lstrip().startswith("<svg") and "PTE grid" in body_svg.replace("&#160;", " ")
        # an unknown extension is refused in the dialog, which stays open
        await press(app, pilot, "x")
        app.screen.query_one("#dialog-input").value = str(tmp_path / "x.pdf")
        await press(app, pilot, "enter")
        assert app.screen.id == "dialog-export"
        assert "unknown export format '.pdf'" in str(app.screen.query_one("#dialog-error").render())
        await press(app, pilot, "escape")
        assert app.screen is main

    run(s, body)


def test_export_failure_is_one_line_and_keeps_the_previous_file(tmp_path):
    s = open_target("demo")
    ro = tmp_path / "ro"
    ro.mkdir()
    old = ro / "t.txt"
    old.write_text("previous\n")
    os.chmod(ro, 0o500)

    async def body(app, pilot):
        main = app.main
        await press(app, pilot, "n")
        await press(app, pilot, "x")
        app.screen.query_one("#dialog-input").value = str(old)
        await press(app, pilot, "enter")
        msg = main.messages[-1]
        if os.geteuid() == 0:  # root writes anyway: then the export must be complete
            assert msg.endswith("(ptdump)") and old.read_text().startswith("# demo:")
        else:
            assert msg.startswith("export failed:") and "permission denied" in msg and "\n" not in msg
            assert old.read_text() == "previous\n"
        # a directory as the target
        await press(app, pilot, "x")
        app.screen.query_one("#dialog-input").value = str(tmp_path)  # no extension: refused in the dialog
        await press(app, pilot, "enter")
        assert app.screen.id == "dialog-export"
        await press(app, pilot, "escape")
        d = tmp_path / "dir.txt"
        d.mkdir()
        await press(app, pilot, "x")
        app.screen.query_one("#dialog-input").value = str(d)
        await press(app, pilot, "enter")
        assert main.messages[-1].startswith("export failed:") and "it is a directory" in main.messages[-1]
        assert d.is_dir() and not list(d.iterdir())

    try:
        run(s, body)
    finally:
        os.chmod(ro, 0o700)


def test_decode_prefills_the_entry_under_the_cursor_and_matches_ptlab_decode():
    s = open_target("demo")

    async def body(app, pilot):
        main = app.main
        await press(app, pilot, "n", "n")
        addr = main.inspected_addr()
        raw = main.model.raw(addr)
        assert raw  # the demo's first fault mapped the cursor's page
        await press(app, pilot, "v")
        assert app.screen.id == "dialog-decode"
        assert app.screen.query_one("#dialog-input").value == f"{raw:#018x}"
        await press(app, pilot, "enter")
        assert app.screen.id == "dialog-decoded"
        shown = str(app.screen.query_one("#dialog-text").render())
        arch = main.session.machine.arch
        d = decode(raw, arch.g, arch.layout, arch.profile)
        assert f"{d.kind}: {d.summary}" in shown and f"{raw:#018x}" in shown
        await press(app, pilot, "escape")
        assert app.screen is main
        # any value: a swap entry typed in; bad text stays in the dialog with the reason
        await press(app, pilot, "v")
        app.screen.query_one("#dialog-input").value = "zz"
        await press(app, pilot, "enter")
        assert app.screen.id == "dialog-decode"
        assert "not a hexadecimal value" in str(app.screen.query_one("#dialog-error").render())
        app.screen.query_one("#dialog-input").value = "0x4"  # not valid, not zero: a swap pte
        await press(app, pilot, "enter")
        shown = str(app.screen.query_one("#dialog-text").render())
        assert "swap" in shown.lower()
        await press(app, pilot, "escape")

    run(s, body)
