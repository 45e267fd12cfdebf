# SPDX-License-Identifier: GPL-2.0-only
"""Sessions saved as .ptsnap and opened again: records come from the file,
seeking uses its checkpoints, --verify re-executes and finds divergences."""

import json
from pathlib import Path

import pytest

from engine.ptep_machine import ApiMachine, ops_from_vector_trace
from engine.session import Position, Session
from snapshots import SnapshotError
from snapshots.sessions import open_session, save_session, verify

DATA = Path(__file__).resolve().parent / "data" / "ptep-vectors.json"


def api_session(trace, kernel=None, **kw):
    cfg = {"granule": trace["granule"], "kernel": kernel or trace["kernel"], "cpu": trace["cpu"]}
    return Session(lambda: ApiMachine(cfg["granule"], cfg["kernel"], cfg["cpu"]),
                   ops_from_vector_trace(trace), meta={"machine": "api", "config": cfg}, name="trace", **kw)


@pytest.fixture(scope="module")
def trace():
    traces = json.loads(DATA.read_text())["traces"]
    return next(t for t in traces if t["kernel"] == "v6.9" and t["granule"] == 4096)


def test_round_trip_keeps_records_and_states(tmp_path, trace):
    s = api_session(trace, checkpoint_ops=20)
    s.run()
    path = tmp_path / "t.ptsnap"
    save_session(s, str(path), created="2026-01-01T00:00:00Z")
    loaded = open_session(str(path))
    try:
        t = loaded.session
        assert t.executed == s.executed and len(t.ops) == len(s.ops)
        assert [t.records[k].digest for k in range(s.executed)] == [r.digest for r in s.records]
        assert t.totals()["converts"] == s.totals()["converts"]
        for k in (0, 17, 45, len(s.ops) - 1, len(s.ops)):
            t.seek(Position(k))
            s.seek(Position(k))
            assert t.machine.digest() == s.machine.digest()
        # seeking used the file's checkpoints, not a replay from op 0
        assert t.stats.ops_replayed < len(s.ops)
    finally:
        loaded.snapshot.close()


def test_saves_are_byte_identical_for_identical_runs(tmp_path, trace):
    paths = []
    for i in range(2):
        s = api_session(trace, checkpoint_ops=20)
        s.run()
        p = tmp_path / f"{i}.ptsnap"
        save_session(s, str(p), created="2026-01-01T00:00:00Z")
        paths.append(p)
    assert paths[0].read_bytes() == paths[1].read_bytes()


def test_verify_passes_on_the_same_profile_and_reports_divergence_on_another(tmp_path, trace):
    s = api_session(trace, checkpoint_ops=20)
    s.run()
    path = tmp_path / "t.ptsnap"
    save_session(s, str(path))
    ok = verify(str(path))
    assert ok.ok and ok.ops_checked == len(s.ops)
    other = verify(str(path), kernel="v7.0")
    if other.ok:  # this trace might not exercise a v6.9/v7.0 difference
        pytest.skip("trace has no v6.9/v7.0 difference")
    d = other.divergence
    assert d is not None and d.op < len(s.ops)
    assert "ptep_set_access_flags" in d.text or d.what == "counters"
    assert d.message().startswith(f"op {d.op + 1} (")


def test_not_a_snapshot_is_one_clear_error(tmp_path):
    p = tmp_path / "x.ptsnap"
    p.write_bytes(b"hello world, definitely not msgpack")
    with pytest.raises(SnapshotError) as e:
        open_session(str(p))
    assert "\n" not in str(e.value) and "x.ptsnap" in str(e.value)
    with pytest.raises(SnapshotError):
        open_session(str(tmp_path / "missing.ptsnap"))
