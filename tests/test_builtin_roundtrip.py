# SPDX-License-Identifier: GPL-2.0-only
"""Every built-in scenario saved as .ptsnap and replayed with --verify
matches op for op; replayed under another policy, the first divergence is
reported. The 1 GiB seed benchmarks run at 16 MiB here (same ops and paths)."""

import json
import subprocess
import sys

import pytest

from engine.scenario import builtin, builtin_names
from snapshots.sessions import open_session, save_session, verify
from tui.targets import scenario_session


def _target(name: str, tmp_path) -> str:
    if not name.startswith("seed-"):
        return name
    text = builtin(name).source.replace("1G", "16M")
    p = tmp_path / f"{name}.pts"
    p.write_text(text)
    return str(p)


@pytest.mark.parametrize("name", builtin_names())
def test_builtin_saves_and_verifies(name, tmp_path):
    s = scenario_session(_target(name, tmp_path))
    s.run()
    assert s.error is None
    path = tmp_path / f"{name}.ptsnap"
    save_session(s, str(path))
    res = verify(str(path))
    assert res.ok, res.divergence and res.divergence.message()
    assert res.ops_checked == len(s.ops)
    loaded = open_session(str(path))
    try:
        assert loaded.session.totals()["cycles"] == pytest.approx(s.totals()["cycles"])
    finally:
        loaded.snapshot.close()


def test_replay_under_another_policy_reports_the_first_divergence(tmp_path):
    """check-08: under any-entry, the mprotect of a middle page already tries a
    fold (an extra __contpte_try_fold and its reads) where mainline does not:
    the replay stops at that op with the costs that differ."""
    s = scenario_session("check-08-mprotect-one-page")
    s.run()
    path = tmp_path / "c8.ptsnap"
    save_session(s, str(path))
    res = verify(str(path), policy="any-entry")
    assert not res.ok
    d = res.divergence
    assert d.op == 4 and d.text == "mprotect mid +28K 4K r"
    assert d.what == "counters" and d.expected["call:__contpte_try_fold"] == (0, 1)
    out = subprocess.run([sys.executable, "-m", "tui.cli", "replay", str(path), "--verify", "--policy",
                          "any-entry", "--json"], capture_output=True, text=True)
    assert out.returncode == 1
    j = json.loads(out.stdout)
    assert j["ok"] is False and j["first_divergence"]["op"] == d.op + 1
    assert "diverges at op" in out.stderr and out.stderr.count("\n") == 1
