# SPDX-License-Identifier: GPL-2.0-only
"""Snapshots: what is saved comes back, bit for bit, and the API behaves as documented."""

from __future__ import annotations

import os
import struct

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from snapshot_samples import CREATED, header, load_all, op_records, plain, state

from snapshots import (
    Limits,
    OpRecord,
    SnapshotCorruptError,
    SnapshotError,
    SnapshotHeader,
    SnapshotWriter,
    open_snapshot,
    save_snapshot,
)
from snapshots.blobs import xor64_decode, xor64_encode
from snapshots.codec import check_plain, pack
from snapshots.errors import RecordError
from snapshots.framing import COMMIT_BODY, FRAME, FRAME_SIZE, PREAMBLE_SIZE, Kind, decompress, encode_frame


def records_of(ops):
    return [(r.op, r.counters, r.digest) for r in ops]


def frames(data: bytes):
    """(offset, kind, flags, body) of every record."""
    pos = PREAMBLE_SIZE
    while pos < len(data):
        length, kind, flags, _crc = FRAME.unpack_from(data, pos)
        yield pos, kind, flags, data[pos + FRAME_SIZE:pos + FRAME_SIZE + length]
        pos += FRAME_SIZE + length


# --- round trips ---------------------------------------------------------------------------------


def test_header_round_trip(tmp_path):
    h = header(extra={"mthp": {"64K": "always", "2M": "never"}, "capture": {"pid": 42}, "blob": b"\x00\xff"})
    p = tmp_path / "h.ptsnap"
    save_snapshot(p, h, [])
    with open_snapshot(p) as snap:
        assert snap.header == h
        assert snap.header.created == CREATED
        assert snap.format_version == 3
        assert len(snap.ops) == 0 and not snap.truncated and snap.warnings == []


def test_ops_and_checkpoints_round_trip(tmp_path):
    ops = op_records(3000, mixed=True)
    cps = {0: state(0), 1000: state(1000), 2999: state(2999), 3000: state(3000)}
    p = tmp_path / "s.ptsnap"
    assert save_snapshot(p, header(), ops, cps) == 3000
    h, got, got_cps, truncated, warnings = load_all(p)
    assert records_of(got) == ops
    assert [r.number for r in got] == list(range(3000))
    assert got_cps == {n: plain(s) for n, s in cps.items()}
    assert not truncated and warnings == []


def test_scan_reads_the_same_as_the_index(tmp_path):
    ops = op_records(2500, mixed=True)
    cps = {0: state(0), 1024: state(1024), 2500: state(2500)}
    p = tmp_path / "s.ptsnap"
    save_snapshot(p, header(), ops, cps)
    fast = load_all(p)
    scanned = load_all(p, scan=True)
    assert fast == scanned


def test_streaming_writer(tmp_path):
    p = tmp_path / "run.ptsnap"
    ops = op_records(2600)
    with SnapshotWriter(p, header(), commit_every=500, batch_size=256) as w:
        assert w.partial_path == str(p) + ".partial"
        w.add_checkpoint(0, state(0))
        for i, rec in enumerate(ops):
            assert w.add_op(*rec) == i
            if w.op_count % 1000 == 0:
                w.add_checkpoint(w.op_count, state(w.op_count))
        assert w.committed_ops == 2500
        assert not p.exists() and os.path.exists(w.partial_path)
    assert not os.path.exists(str(p) + ".partial")
    _, got, cps, truncated, _ = load_all(p)
    assert records_of(got) == ops and sorted(cps) == [0, 1000, 2000] and not truncated


def test_exception_in_writer_block_leaves_target_alone(tmp_path):
    p = tmp_path / "keep.ptsnap"
    p.write_bytes(b"previous contents")
    with pytest.raises(RuntimeError), SnapshotWriter(p, header()) as w:
        w.add_op(*op_records(1)[0])
        raise RuntimeError("engine bug")
    assert p.read_bytes() == b"previous contents"
    assert not os.path.exists(str(p) + ".partial")
    assert w.closed
    with pytest.raises(ValueError, match="closed"):
        w.add_op(*op_records(1)[0])


def test_checkpoint_for_and_mapping(tmp_path):
    p = tmp_path / "c.ptsnap"
    save_snapshot(p, header(), op_records(100), {10: state(10), 50: state(50), 100: state(100)})
    with open_snapshot(p) as snap:
        assert snap.checkpoint_for(9) is None
        assert snap.checkpoint_for(10).op_number == 10
        assert snap.checkpoint_for(49).op_number == 10
        assert snap.checkpoint_for(50) == (50, plain(state(50)))
        assert snap.checkpoint_for(10**9).op_number == 100
        assert snap.checkpoint_numbers == [10, 50, 100] == list(snap.checkpoints)
        assert 50 in snap.checkpoints and 51 not in snap.checkpoints and "50" not in snap.checkpoints
        assert len(snap.checkpoints) == 3
        with pytest.raises(KeyError):
            snap.checkpoints[11]
        a = snap.checkpoints[50]
        a["mm"].clear()  # each access decodes afresh
        assert snap.checkpoints[50] == plain(state(50))


def test_ops_sequence(tmp_path):
    ops = op_records(700)
    p = tmp_path / "o.ptsnap"
    with SnapshotWriter(p, header(), batch_size=64) as w:
        for rec in ops:
            w.add_op(*rec)
    with open_snapshot(p) as snap:
        seq = snap.ops
        assert len(seq) == 700
        assert seq[-1] == OpRecord(699, *ops[699])
        assert records_of(seq[100:300]) == ops[100:300]
        assert records_of(seq[650:]) == ops[650:]
        assert records_of(seq[5:400:37]) == ops[5:400:37]
        assert seq[10:5] == []
        with pytest.raises(IndexError):
            seq[700]
        with pytest.raises(TypeError):
            seq["1"]  # type: ignore[index]


def test_copy_a_snapshot(tmp_path):
    a, b = tmp_path / "a.ptsnap", tmp_path / "b.ptsnap"
    save_snapshot(a, header(), op_records(300, mixed=True), {0: state(0), 300: state(300)})
    with open_snapshot(a) as snap:
        save_snapshot(b, snap.header, snap.ops, snap.checkpoints)
    assert a.read_bytes() == b.read_bytes()


def test_checkpoint_generator(tmp_path):
    p = tmp_path / "g.ptsnap"
    save_snapshot(p, header(), op_records(30), ((n, state(n)) for n in (0, 10, 30)))
    assert sorted(load_all(p)[2]) == [0, 10, 30]


# --- determinism ------------------------------------------------------------------------------------


def test_identical_input_gives_identical_bytes(tmp_path):
    ops, cps = op_records(1500, mixed=True), {0: state(0), 1200: state(1200)}
    a, b = tmp_path / "a.ptsnap", tmp_path / "b.ptsnap"
    save_snapshot(a, header(), ops, cps)
    with SnapshotWriter(b, header(), commit_every=1024, fsync=False) as w:  # streaming, same commit points
        w.add_checkpoint(0, cps[0])
        for rec in ops:
            if w.op_count == 1200:
                w.add_checkpoint(1200, cps[1200])
            w.add_op(*rec)
    assert a.read_bytes() == b.read_bytes()


def test_only_the_timestamp_differs(tmp_path):
    ops, cps = op_records(500), {0: state(0)}
    a, b = tmp_path / "a.ptsnap", tmp_path / "b.ptsnap"
    save_snapshot(a, header(created="2025-01-31T12:00:00Z"), ops, cps)
    save_snapshot(b, header(created="2031-12-24T23:59:58Z"), ops, cps)
    da, db = a.read_bytes(), b.read_bytes()
    assert len(da) == len(db)
    diff = [i for i in range(len(da)) if da[i] != db[i]]
    # every differing byte is in the header record (the timestamp, and the record's CRC) ...
    hdr_len = FRAME.unpack_from(da, PREAMBLE_SIZE)[0]
    assert diff and all(PREAMBLE_SIZE <= i < PREAMBLE_SIZE + FRAME_SIZE + hdr_len for i in diff)
    # ... and the headers differ in nothing but the timestamp
    ua = _uncompressed_header(da)
    ub = _uncompressed_header(db)
    assert ua.replace(b"2025-01-31T12:00:00Z", b"2031-12-24T23:59:58Z") == ub


def _uncompressed_header(data: bytes) -> bytes:
    import zlib

    _off, _kind, flags, body = next(frames(data))
    return zlib.decompress(body) if flags & 1 else body


def test_created_is_filled_in_and_honours_source_date_epoch(tmp_path, monkeypatch):
    p = tmp_path / "t.ptsnap"
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    save_snapshot(p, header(created=""), [])
    with open_snapshot(p) as snap:
        assert snap.header.created == "2023-11-14T22:13:20Z"
    monkeypatch.delenv("SOURCE_DATE_EPOCH")
    w = SnapshotWriter(p, header(created=""))
    assert len(w.header.created) == 20 and w.header.created.endswith("Z")
    w.abort()
    with pytest.raises(ValueError, match="created"):
        SnapshotWriter(p, header(created="yesterday"))


# --- sharing of big bytes values ----------------------------------------------------------------------


def test_identical_tables_are_stored_once(tmp_path):
    p = tmp_path / "d.ptsnap"
    s = state(0, tables=20)
    save_snapshot(p, header(), op_records(10), {n: s for n in range(11)}, compress_level=0)
    kinds = [k for _o, k, _f, _b in frames(p.read_bytes())]
    assert kinds.count(Kind.CHECKPOINT) == 11
    assert kinds.count(Kind.BLOB) == 21  # 20 tables + the shared one, once for all 11 checkpoints
    assert load_all(p)[2] == {n: plain(s) for n in range(11)}


def test_a_state_that_is_one_big_bytes_value(tmp_path):
    p = tmp_path / "one.ptsnap"
    table = bytes(range(256)) * 16
    save_snapshot(p, header(), op_records(2), {0: table, 1: b"small", 2: table})
    assert load_all(p)[2] == {0: table, 1: b"small", 2: table}


def test_blob_sizes_and_filters(tmp_path):
    p = tmp_path / "b.ptsnap"
    s = {"odd": bytes(range(256)) * 3 + b"x",  # not a multiple of 8: unfiltered
         "words": bytes(range(256)) * 4, "small": b"y" * 511, "edge": b"z" * 512, "big": os.urandom(3 << 20)}
    save_snapshot(p, header(), [], {0: s})
    assert load_all(p)[2] == {0: s}


@given(st.binary(max_size=2048).map(lambda b: b[:len(b) // 8 * 8]))
@settings(max_examples=200, deadline=None)
def test_xor64_round_trip(data):
    assert xor64_decode(xor64_encode(data)) == data


# --- what may be stored ---------------------------------------------------------------------------------


def test_writer_refuses_values_the_reader_would_reject(tmp_path):
    p = tmp_path / "bad.ptsnap"
    cases = [
        (({1: "int key"}, {}, "00"), "op 0.*map key"),
        (({"verb": "x", "args": {"f": {1, 2}}}, {}, "00"), "op 0.*set"),
        (({"verb": "x"}, {"n": "three"}, "00"), "op 0: counter 'n'"),
        (({"verb": "x"}, {"n": True}, "00"), "op 0: counter 'n'"),
        (({"verb": "x"}, {2: 1}, "00"), "op 0: counter name 2"),
        (({"verb": "x", "a": 2**64}, {}, "00"), "op 0"),
    ]
    deep: dict = {}
    node = deep
    for _ in range(40):
        node["d"] = {}
        node = node["d"]
    cases.append((({"verb": "x", "deep": deep}, {}, "00"), "op 0.*nests too deeply"))
    for rec, msg in cases:
        with pytest.raises(ValueError, match=msg):
            save_snapshot(p, header(), [rec])
        assert not p.exists() and not os.path.exists(str(p) + ".partial")
    with pytest.raises(TypeError):
        save_snapshot(p, header(), [("op", {}, "00")])
    with pytest.raises(TypeError):
        save_snapshot(p, header(), [({}, {}, 5)])


def test_checkpoint_rules(tmp_path):
    p = tmp_path / "cp.ptsnap"
    w = SnapshotWriter(p, header())
    w.add_op(*op_records(1)[0])
    with pytest.raises(ValueError, match="between 0 and the 1 ops"):
        w.add_checkpoint(2, {})
    w = SnapshotWriter(p, header())
    w.add_checkpoint(0, {})
    with pytest.raises(ValueError, match="increasing"):
        w.add_checkpoint(0, {})
    for bad, msg in (({"k": object()}, "object"), ({1: 2}, "map key"), ([[[[]]]], None)):
        w = SnapshotWriter(p, header())
        if msg is None:
            w.add_checkpoint(0, bad)  # fine
            w.close()
            continue
        with pytest.raises(ValueError, match=msg):
            w.add_checkpoint(0, bad)
        assert w.closed


def test_check_plain():
    check_plain({"a": [1, 2.5, None, True, "s", b"b", {"c": []}]}, 4)
    with pytest.raises(RecordError, match="nests too deeply"):
        check_plain({"a": [{"c": [1]}]}, 3)
    with pytest.raises(RecordError, match="tuple"):
        check_plain([(1, 2)], 5)
    check_plain([(1, 2)], 5, lenient=True)
    with pytest.raises(RecordError, match="map key"):
        check_plain([{b"k": 1}], 5)


# --- damaged and odd files ------------------------------------------------------------------------------


def test_every_truncation_recovers_the_committed_prefix(tmp_path):
    ops = op_records(300)
    p = tmp_path / "full.ptsnap"
    with SnapshotWriter(p, header(), commit_every=50, batch_size=32, fsync=False) as w:
        w.add_checkpoint(0, state(0, tables=1))
        for rec in ops:
            w.add_op(*rec)
            if w.op_count == 120:
                w.add_checkpoint(120, state(120, tables=1))
    data = p.read_bytes()
    commits = [(off + FRAME_SIZE + len(body), struct.unpack("<QQ", body)[0])
               for off, kind, _f, body in frames(data) if kind == Kind.COMMIT]
    cut = tmp_path / "cut.ptsnap"
    last = -1
    cuts = set(range(0, len(data), 41)) | {e + d for e, _ in commits for d in (-1, 0, 1)}
    for n in sorted(c for c in cuts if c < len(data)):
        cut.write_bytes(data[:n])
        try:
            _, got, cps, truncated, warnings = load_all(cut)
        except SnapshotError as e:
            assert n < PREAMBLE_SIZE + FRAME_SIZE + 400 and "\n" not in str(e)
            continue
        expect = max((ops_n for end, ops_n in commits if end <= n), default=0)
        assert len(got) == expect and records_of(got) == ops[:expect]
        assert truncated and f"recovered {expect} ops; file truncated after op {expect}" in warnings[-1]
        assert set(cps) <= {0, 120} and all(k <= expect for k in cps)
        assert len(got) >= last
        last = len(got)


def test_unknown_record_kinds_are_skipped(tmp_path):
    p = tmp_path / "u.ptsnap"
    save_snapshot(p, header(), op_records(40), {0: state(0)}, commit_every=None)
    data = p.read_bytes()
    off = [o for o, k, _f, _b in frames(data) if k == Kind.OPS][0]
    odd = encode_frame(99, b"from a future ptlab", 0) + encode_frame(200, b"\x00" * 100, 0)
    q = tmp_path / "u2.ptsnap"
    q.write_bytes(data[:off] + odd + data[off:])  # offsets after the insert no longer match the index
    _, got, cps, truncated, warnings = load_all(q)
    assert records_of(got) == op_records(40) and list(cps) == [0] and not truncated
    assert any("unusable" in w for w in warnings)
    assert any("skipped 1 record of unknown kind 99" in w for w in warnings)
    assert any("skipped 1 record of unknown kind 200" in w for w in warnings)


def test_trailing_junk_is_reported_not_fatal(tmp_path):
    p = tmp_path / "j.ptsnap"
    save_snapshot(p, header(), op_records(20), {})
    with open(p, "ab") as f:
        f.write(b"\x00garbage" * 10)
    _, got, _, truncated, warnings = load_all(p)
    assert len(got) == 20 and not truncated and "ignored 80 bytes" in warnings[-1]


def test_damage_in_the_middle(tmp_path):
    p = tmp_path / "m.ptsnap"
    save_snapshot(p, header(), op_records(3000), {0: state(0), 2048: state(2048)})
    data = bytearray(p.read_bytes())
    off = [o for o, k, _f, _b in frames(bytes(data)) if k == Kind.OPS][1]  # ops 1024-2047
    data[off + FRAME_SIZE + 20] ^= 0x40
    p.write_bytes(bytes(data))
    with open_snapshot(p) as snap:  # the index is intact: opens, and says where the damage is on use
        assert len(snap.ops) == 3000
        assert snap.ops[5].number == 5
        with pytest.raises(SnapshotCorruptError, match=rf"ops 1024-2047 at offset {off:#x} fails its CRC"):
            snap.ops[1500]
        with pytest.raises(SnapshotCorruptError):
            snap.verify()
    _, got, cps, truncated, warnings = load_all(p, scan=True)
    assert len(got) == 1024 and truncated and list(cps) == [0]
    assert f"at offset {off:#x} fails its CRC" in warnings[-1]
    assert "recovered 1024 ops; file truncated after op 1024" in warnings[-1]


def test_a_closed_snapshot_says_so(tmp_path):
    p = tmp_path / "x.ptsnap"
    save_snapshot(p, header(), op_records(3), {})
    snap = open_snapshot(p)
    snap.close()
    with pytest.raises(SnapshotError, match="closed"):
        snap.ops[0]
    assert "x.ptsnap" in repr(snap)


def test_header_only_default_header_round_trip(tmp_path):
    p = tmp_path / "d.ptsnap"
    h = SnapshotHeader(created=CREATED)
    save_snapshot(p, h, [])
    assert load_all(p)[0] == h


def test_limits_are_shared_by_writer_and_reader(tmp_path):
    small = Limits(max_ops=3000, max_checkpoint=2000, max_header=1000)
    p = tmp_path / "l.ptsnap"
    ops = op_records(200)
    save_snapshot(p, header(), ops, {0: {"t": b"\x01" * 4096, "n": list(range(100))}}, limits=small)
    sizes = [len(b) for _o, k, _f, b in frames(p.read_bytes()) if k == Kind.OPS]
    assert len(sizes) > 200 // 32  # batches were split to stay under max_ops
    with open_snapshot(p, limits=small) as snap:
        assert records_of(snap.ops) == ops
    with pytest.raises(ValueError, match="checkpoint at op 0 is too big"):
        save_snapshot(p, header(), [], {0: list(range(1000))}, limits=small)
    with pytest.raises(ValueError, match="header is too big"):
        save_snapshot(p, header(scenario_source="x" * 2000), [], limits=small)
    with pytest.raises(ValueError, match="op 0 is too big"):
        save_snapshot(p, header(), [({"verb": "x" * 4000}, {}, "00")], limits=small)
    save_snapshot(p, header(), ops, {0: list(range(1000))})
    with open_snapshot(p, limits=Limits(max_ops=1000, max_checkpoint=100)) as snap:
        with pytest.raises(SnapshotCorruptError, match="(exceeds|inflates past) the limit of 1000"):
            snap.ops[0]
        with pytest.raises(SnapshotCorruptError, match="checkpoint at op 0"):
            snap.checkpoints[0]


def test_add_ops_in_bulk(tmp_path):
    ops = op_records(2500, mixed=True)
    a, b = tmp_path / "a.ptsnap", tmp_path / "b.ptsnap"
    with SnapshotWriter(a, header(), commit_every=700, fsync=False) as w:
        for rec in ops:
            w.add_op(*rec)
    with SnapshotWriter(b, header(), commit_every=700, fsync=False) as w:
        assert w.add_ops(ops[:1000]) == 1000
        assert w.add_ops(OpRecord(1000 + i, *r) for i, r in enumerate(ops[1000:])) == 2500
        assert w.add_ops([]) == 2500
    assert a.read_bytes() == b.read_bytes()
    w = SnapshotWriter(tmp_path / "c.ptsnap", header())
    w.add_ops(ops[:10] + [({"verb": "x"}, {"n": "x"}, "00")] + ops[:10])
    with pytest.raises(ValueError, match="op 10: counter 'n'"):
        w.close()
    assert not (tmp_path / "c.ptsnap").exists()


def test_bad_header_fields_are_refused_before_anything_is_written(tmp_path):
    p = tmp_path / "h.ptsnap"
    for kw, msg in (({"kernel": None}, "'kernel' must be a string"),
                    ({"seed": "1"}, "'seed' must be an integer"),
                    ({"extra": {1: 2}}, "map key"), ({"extra": {"x": object()}}, "object")):
        with pytest.raises(ValueError, match=msg):
            SnapshotWriter(p, header(**kw))
        assert not p.exists() and not os.path.exists(str(p) + ".partial")


def test_fields_from_a_newer_writer_are_kept_or_ignored(tmp_path):
    h = header()
    h.unknown = {"future_field": [1, 2]}
    p = tmp_path / "f.ptsnap"
    save_snapshot(p, h, op_records(5), {0: state(0)})
    with open_snapshot(p) as snap:
        assert snap.header.unknown == {"future_field": [1, 2]} and snap.header == h
    # an index with fields this reader does not know is still used (no scan, no warning)
    data = p.read_bytes()
    recs = list(frames(data))
    i_off, _kind, i_flags, i_body = recs[-2]
    assert recs[-1][1] == Kind.COMMIT
    index = msgpack.unpackb(decompress(i_flags, i_body, 1 << 20))
    index["markers"] = [3, 12345]
    new_index = encode_frame(Kind.INDEX, pack(index), 1)
    q = tmp_path / "g.ptsnap"
    q.write_bytes(data[:i_off] + new_index + encode_frame(Kind.COMMIT, COMMIT_BODY.pack(5, i_off), 0))
    with open_snapshot(q) as snap:
        assert snap.warnings == [] and not snap.truncated and len(snap.ops) == 5


def test_reading_from_several_threads(tmp_path):
    import threading

    p = tmp_path / "t.ptsnap"
    ops = op_records(5000)
    save_snapshot(p, header(), ops, {n: state(n, tables=1) for n in (0, 2500, 5000)})
    errors = []
    with open_snapshot(p) as snap:
        def worker(seed):
            import random

            rng = random.Random(seed)
            try:
                for _ in range(80):
                    i = rng.randrange(5000)
                    assert snap.ops[i] == OpRecord(i, *ops[i])
                    assert snap.checkpoint_for(i).op_number == (0 if i < 2500 else 2500)
            except Exception as e:  # noqa: BLE001
                errors.append(e)

        threads = [threading.Thread(target=worker, args=(s,)) for s in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []


# --- property: whatever plain data goes in comes back -------------------------------------------------

_scalars = (st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False)
            | st.text(max_size=12) | st.binary(max_size=12) | st.binary(min_size=512, max_size=700))
_plain = st.recursive(_scalars, lambda c: st.lists(c, max_size=4) | st.tuples(c, c)
                      | st.dictionaries(st.text(max_size=6), c, max_size=4), max_leaves=12)
_ops = st.lists(st.tuples(st.dictionaries(st.text(max_size=6), _plain, max_size=4),
                          st.dictionaries(st.text(max_size=8), st.integers(-(2**63), 2**63) | st.floats(
                              allow_nan=False), max_size=4),
                          st.text(alphabet="0123456789abcdef", min_size=2, max_size=2).map(lambda s: s * 8)
                          | st.text(max_size=10) | st.binary(max_size=10)),
                max_size=40)


@given(ops=_ops, states=st.lists(_plain, max_size=3), data=st.data())
@settings(max_examples=100, deadline=None, derandomize=True)
def test_any_plain_data_round_trips(tmp_path_factory, ops, states, data):
    numbers = sorted(data.draw(st.sets(st.integers(0, len(ops)), max_size=len(states))))
    cps = dict(zip(numbers, states, strict=False))
    p = tmp_path_factory.mktemp("prop") / "p.ptsnap"
    save_snapshot(p, header(), ops, cps, commit_every=data.draw(st.sampled_from([None, 1, 7])))
    for scan in (False, True):
        _h, got, got_cps, truncated, _w = load_all(p, scan=scan)
        assert records_of(got) == [(plain(o), c, d) for o, c, d in ops]
        assert got_cps == {n: plain(s) for n, s in cps.items()} and not truncated


class _Odd:
    pass


_anything = st.recursive(
    _scalars | st.integers(-(2**70), 2**70) | st.just(_Odd()) | st.just({1, 2}) | st.just(frozenset()),
    lambda c: st.lists(c, max_size=3) | st.tuples(c) | st.dictionaries(st.text(max_size=3) | st.integers(0, 3)
                                                                      | st.binary(max_size=2), c, max_size=3),
    max_leaves=10)


def _deep(v, n):
    for _ in range(n):
        v = [v]
    return v


@given(op=_anything, state=_anything, depth=st.sampled_from([0, 0, 0, 29, 30, 31, 40]))
@settings(max_examples=150, deadline=None, derandomize=True)
def test_the_writer_refuses_exactly_what_the_reader_would(tmp_path_factory, op, state, depth):
    """Either the writer refuses a value up front, or it comes back equal: never an unreadable file."""
    p = tmp_path_factory.mktemp("refuse") / "r.ptsnap"
    o = {"verb": "x", "v": _deep(op, depth)}
    s = _deep(state, depth)
    try:
        save_snapshot(p, header(), [(o, {"n": 1}, "ab")], {0: s})
    except (ValueError, TypeError):
        assert not p.exists()
        return
    _h, got, cps, truncated, _w = load_all(p)
    assert records_of(got) == [(plain(o), {"n": 1}, "ab")] and cps == {0: plain(s)} and not truncated


def test_subclasses_of_plain_types_are_stored_as_their_base_types(tmp_path):
    import collections
    import enum

    class Verb(enum.StrEnum):
        TOUCH = "touch"

    class Size(enum.IntEnum):
        K64 = 65536

    p = tmp_path / "s.ptsnap"
    ops = [({"verb": Verb.TOUCH, "args": {Verb.TOUCH: Size.K64, "o": collections.OrderedDict(a=1)}},
            collections.Counter(pte_reads=3), "ab")] * 3
    save_snapshot(p, header(), ops, {0: {"t": (Size.K64, [Verb.TOUCH])}})
    _h, got, cps, _t, _w = load_all(p)
    assert records_of(got) == [({"verb": "touch", "args": {"touch": 65536, "o": {"a": 1}}}, {"pte_reads": 3},
                                "ab")] * 3
    assert cps == {0: {"t": [65536, ["touch"]]}}
    assert type(got[0].op["verb"]) is str and type(got[0].op["args"]["touch"]) is int


def test_iter_range(tmp_path):
    p = tmp_path / "r.ptsnap"
    ops = op_records(3000)
    save_snapshot(p, header(), ops)
    with open_snapshot(p) as snap:
        assert records_of(snap.ops.iter_range(1000, 2500)) == ops[1000:2500]
        assert records_of(snap.ops.iter_range(2990)) == ops[2990:]
        assert list(snap.ops.iter_range(5, 5)) == []
        assert [r.number for r in snap.ops.iter_range(2999, 10**9)] == [2999]
