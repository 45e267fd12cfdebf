# SPDX-License-Identifier: GPL-2.0-only
"""Snapshots: the migration chain, step by step, and the golden files of every format version.

The golden files in ``tests/data/snapshot-v*.ptsnap`` were written once and
must stay readable forever; ``python tests/snapshot_samples.py`` rewrites
them (only ever do that when adding a new version's file).
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from snapshot_samples import (
    fixture_content,
    header,
    load_all,
    op_records,
    plain,
    state,
    write_fixture,
    write_legacy,
)

from snapshots import SnapshotFormatError, SnapshotVersionError, open_snapshot, save_snapshot
from snapshots.codec import pack
from snapshots.errors import RecordError
from snapshots.framing import FORMAT_VERSION, OLDEST_VERSION, Kind, encode_frame, encode_preamble
from snapshots.migrate import STEPS, migrate, peek_op_batch, v1_to_v2, v2_to_v3
from snapshots.op_batches import decode_ops, encode_ops

DATA = Path(__file__).resolve().parent / "data"


def records_of(ops):
    return [(r.op, r.counters, r.digest) for r in ops]


def test_the_chain_has_a_step_for_every_old_version():
    assert sorted(STEPS) == list(range(OLDEST_VERSION, FORMAT_VERSION))


# --- v1 -> v2 -------------------------------------------------------------------------------------------


V1_HEADER = {"tool": "ptlab", "tool_version": "0.0.1", "profile": "v6.9", "granule": 65536,
             "cpu_profile": "cortex-a76", "policy": "mainline", "seed": 3,
             "scenario": {"name": "x", "source": "y"}, "extra": {}, "created": "2024-06-01T00:00:00Z"}


def test_v1_to_v2_header():
    before = copy.deepcopy(V1_HEADER)
    out = v1_to_v2(Kind.HEADER, V1_HEADER)
    assert before == V1_HEADER  # pure: the input is not touched
    assert out["kernel"] == "v6.9" and out["cpu"] == "cortex-a76" and out["granule"] == "64K"
    assert "profile" not in out and "cpu_profile" not in out
    assert {k: v for k, v in out.items() if k not in ("kernel", "cpu", "granule")} == \
        {k: v for k, v in V1_HEADER.items() if k not in ("profile", "cpu_profile", "granule")}
    for g, name in ((4096, "4K"), (16384, "16K")):
        assert v1_to_v2(Kind.HEADER, {**V1_HEADER, "granule": g})["granule"] == name
    for bad in (8192, "4K", None):
        with pytest.raises(ValueError, match="granule"):
            v1_to_v2(Kind.HEADER, {**V1_HEADER, "granule": bad})


def test_v1_to_v2_op_batch():
    recs = op_records(9, mixed=True)
    v1 = [100, [{"op": o, "counters": c, "digest": d} for o, c, d in recs]]
    before = copy.deepcopy(v1)
    v2 = v1_to_v2(Kind.OPS, v1)
    assert v1 == before
    assert v2 == encode_ops(100, recs)
    assert records_of(decode_ops(v2, 100, 9)) == recs
    for bad in ([1], [1, []], ["x", [{}]], [0, [{"op": {}, "counters": {}}]], [0, [{"op": 1, "counters": {},
                                                                                      "digest": "0"}]]):
        with pytest.raises(ValueError):
            v1_to_v2(Kind.OPS, bad)


def test_v1_to_v2_leaves_other_records_alone():
    for kind, payload in ((Kind.CHECKPOINT, [0, {"a": 1}]), (Kind.INDEX, {"op_count": 0}), (77, "x")):
        assert v1_to_v2(kind, payload) is payload


# --- v2 -> v3 -------------------------------------------------------------------------------------------


def test_v2_to_v3_checkpoint():
    v2 = [40, {"tables": [[0, b"\x01" * 4096]]}]
    before = copy.deepcopy(v2)
    assert v2_to_v3(Kind.CHECKPOINT, v2) == [40, v2[1], []]
    assert v2 == before
    for bad in ([1], [1, 2, 3], {"n": 1}):
        with pytest.raises(ValueError):
            v2_to_v3(Kind.CHECKPOINT, bad)


def test_v2_to_v3_leaves_other_records_alone():
    ops = encode_ops(0, op_records(3))
    for kind, payload in ((Kind.OPS, ops), (Kind.HEADER, {"tool": "ptlab"}), (Kind.BLOB, [0, 0, b""])):
        assert v2_to_v3(kind, payload) is payload


# --- the chain ------------------------------------------------------------------------------------------


def test_migrate_runs_the_steps_in_order():
    recs = op_records(5)
    v1_ops = [0, [{"op": o, "counters": c, "digest": d} for o, c, d in recs]]
    assert migrate(Kind.OPS, v1_ops, 1) == v2_to_v3(Kind.OPS, v1_to_v2(Kind.OPS, v1_ops))
    assert migrate(Kind.CHECKPOINT, [0, {}], 1) == [0, {}, []]
    assert migrate(Kind.CHECKPOINT, [0, {}], 2) == [0, {}, []]
    current = [0, {}, []]
    assert migrate(Kind.CHECKPOINT, current, FORMAT_VERSION) is current
    with pytest.raises(RecordError, match="from format v1 to v2"):
        migrate(Kind.HEADER, {**V1_HEADER, "granule": 1}, 1)
    with pytest.raises(RecordError, match="from format v2 to v3"):
        migrate(Kind.CHECKPOINT, "nope", 1)


def test_peek_op_batch_per_version():
    recs = op_records(7)
    v1 = pack([42, [{"op": o, "counters": c, "digest": d} for o, c, d in recs]])
    v3 = pack(encode_ops(42, recs))
    assert peek_op_batch(v1[:64], 1) == (42, 7)
    many = pack([0, [{"op": {}, "counters": {}, "digest": "0"}] * 70000])
    assert peek_op_batch(many[:64], 1) == (0, 70000)
    assert peek_op_batch(v3[:64], 2) == (42, 7)
    assert peek_op_batch(v3[:64], 3) == (42, 7)
    with pytest.raises(RecordError):
        peek_op_batch(pack([1, []]), 1)


# --- whole files of old versions ------------------------------------------------------------------------


@pytest.mark.parametrize("version", [1, 2])
def test_old_files_with_big_batches_scan(tmp_path, version):
    ops = op_records(2000)
    p = tmp_path / "big.ptsnap"
    write_legacy(p, version, header(), ops, {0: state(0)}, batch=1000)
    _h, got, cps, truncated, warnings = load_all(p, scan=True)
    assert records_of(got) == ops and list(cps) == [0] and not truncated and warnings == []


@pytest.mark.parametrize("version", [1, 2])
def test_old_files_load_like_new_ones(tmp_path, version):
    ops = op_records(40, mixed=True)
    cps = {0: state(0), 8: state(8), 40: state(40)}
    old, new = tmp_path / "old.ptsnap", tmp_path / "new.ptsnap"
    write_legacy(old, version, header(), ops, cps)
    save_snapshot(new, header(), ops, cps)
    for scan in (False, True):
        h, got, got_cps, truncated, warnings = load_all(old, scan=scan)
        assert (h, got, got_cps) == load_all(new)[:3]
        assert not truncated and warnings == []
    with open_snapshot(old) as snap:
        assert snap.format_version == version
    # a v1/v2 file cut short recovers up to its last commit too
    data = old.read_bytes()
    old.write_bytes(data[:len(data) * 2 // 3])
    _h, got, _c, truncated, warnings = load_all(old)
    assert truncated and 0 < len(got) < 40 and records_of(got) == ops[:len(got)]
    assert f"recovered {len(got)} ops" in warnings[-1]


@pytest.mark.parametrize("version", [1, 2, 3])
def test_golden_files(version):
    h, ops, cps = fixture_content()
    got_h, got, got_cps, truncated, warnings = load_all(DATA / f"snapshot-v{version}.ptsnap")
    assert got_h == h and records_of(got) == ops and got_cps == {n: plain(s) for n, s in cps.items()}
    assert not truncated and warnings == []


def test_the_current_writer_still_writes_the_golden_v3_bytes(tmp_path):
    """A change to what v3 files look like must come with a new format version (and a migration)."""
    write_fixture(tmp_path / "v3.ptsnap", 3)
    assert (tmp_path / "v3.ptsnap").read_bytes() == (DATA / "snapshot-v3.ptsnap").read_bytes()


def test_newer_versions_are_refused_clearly(tmp_path):
    data = (DATA / "snapshot-v3.ptsnap").read_bytes()
    p = tmp_path / "future.ptsnap"
    for version, flags in ((FORMAT_VERSION + 1, 0), (999, 0), (FORMAT_VERSION, 1)):
        p.write_bytes(encode_preamble(version, flags) + data[16:])
        with pytest.raises(SnapshotVersionError, match=r"future\.ptsnap: made by a newer ptlab") as e:
            open_snapshot(p)
        assert "\n" not in str(e.value)
    p.write_bytes(encode_preamble(0) + data[16:])
    with pytest.raises(SnapshotFormatError, match="unknown snapshot format v0"):
        open_snapshot(p)


def test_a_v1_header_with_a_bad_granule_is_a_header_error(tmp_path):
    p = tmp_path / "bad.ptsnap"
    p.write_bytes(encode_preamble(1) + encode_frame(Kind.HEADER, pack({**V1_HEADER, "granule": 3}), 0))
    with pytest.raises(SnapshotFormatError, match=r"bad\.ptsnap: unreadable header: .*granule"):
        open_snapshot(p)
