# SPDX-License-Identifier: GPL-2.0-only
"""save_session's shortcuts (blob hashes and conversions reused by object identity, key
lists per distinct counter dict, ops a chunk at a time, op text templates) write the
same bytes as the plain path: every op converted afresh, every bytes value a new object."""

import gc
import re

import pytest

from bench.session_bench import make_session
from engine.errors import ScenarioError
from engine.expressions import _expr_value, substitute
from snapshots import SnapshotError
from snapshots.blobs import BLOB_MIN
from snapshots.op_batches import _keysets, _keysets_of
from snapshots.reader import open_snapshot
from snapshots.sessions import _counters_plain, save_session, session_header
from snapshots.writer import save_snapshot

CREATED = "2026-01-01T00:00:00Z"


def _fresh(x):
    """x rebuilt with no object shared with anything else (bytes copied too)."""
    if isinstance(x, bytes):
        return bytes(bytearray(x))
    if isinstance(x, dict):
        return {k: _fresh(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_fresh(v) for v in x]
    return x


def _big_bytes(x, out):
    if isinstance(x, bytes) and len(x) >= BLOB_MIN:
        out.append(x)
    elif isinstance(x, dict):
        for v in x.values():
            _big_bytes(v, out)
    elif isinstance(x, (list, tuple)):
        for v in x:
            _big_bytes(v, out)
    return out


@pytest.fixture(scope="module")
def session():
    s = make_session(2001)  # a repeat loop, checkpoints every few hundred ops
    s.run()
    return s


def test_save_session_writes_the_bytes_of_the_plain_path(tmp_path, session):
    s, m = session, session.machine
    fast = tmp_path / "fast.ptsnap"
    save_session(s, str(fast), created=CREATED)
    snap = open_snapshot(str(fast))
    try:
        cps = list(snap.checkpoints)  # the ones save_session chose to keep
    finally:
        snap.close()
    plains = {c: m.state_to_plain(s.checkpoint(c)) for c in cps}
    # the shortcuts are exercised: checkpoints share chunks, records share counter dicts
    last, before = ({id(b) for b in _big_bytes(plains[c], [])} for c in cps[-1:-3:-1])
    assert len(cps) >= 3 and last & before
    assert len({id(r.counters) for r in s.records}) < s.executed // 10

    plain = tmp_path / "plain.ptsnap"
    ops = [(s.ops[k].to_plain(), _counters_plain(dict(s.records[k].counters)), s.records[k].digest)
           for k in range(s.executed)]
    save_snapshot(plain, session_header(s, CREATED), ops, {c: _fresh(p) for c, p in plains.items()})
    assert fast.read_bytes() == plain.read_bytes()


def test_save_session_turns_the_collector_back_on(tmp_path, session):
    save_session(session, str(tmp_path / "ok.ptsnap"), created=CREATED)
    assert gc.isenabled()
    with pytest.raises(SnapshotError):
        save_session(session, str(tmp_path / "no-such-dir" / "x.ptsnap"), created=CREATED)
    assert gc.isenabled()
    gc.disable()
    try:  # and leaves it off for a caller that turned it off
        save_session(session, str(tmp_path / "ok.ptsnap"), created=CREATED)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_keysets_by_identity_match_keysets_per_dict():
    a, b, c = {"x": 1, "y": 2}, {"y": 1, "x": 2}, {"x": 3}
    for dicts in ([a] * 8, [a, b] * 6 + [c] * 4, [c] + [a] * 20, [a, b, c], [a]):
        assert _keysets(dicts) == _keysets_of(dicts) == _keysets_of([dict(d) for d in dicts])
    assert _keysets([a] * 8) == ([["x", "y"]], None)
    assert _keysets([a, b] * 6 + [c] * 4) == ([["x", "y"], ["y", "x"], ["x"]], [0, 1] * 6 + [2] * 4)
    with pytest.raises(ValueError, match="not a string"):
        _keysets([{1: 2}] * 8)


def _substitute_by_regex(text, env):  # what substitute() did before it cached templates
    return re.sub(r"\{([^{}]*)\}", lambda m: str(_expr_value(m.group(1), env)), text)


@pytest.mark.parametrize("text", [
    "touch heap +{(i % 1024) * 64K} 64K write", "no expression", "{i}{j}x{-i}", "a}b{i}c{", "{{i}}",
    "{ i * 2 } {i/j}", "{i/0} {1+}", "{1+} {i/0}", "{}", "{k}", "{i * 99999999999 * 99999999999}"])
def test_substitute_matches_the_regex_pass(text):
    for env in ({"i": 3, "j": 0}, {"i": 5, "j": 2}, {}):
        got, want = [], []
        for f, out in ((substitute, got), (_substitute_by_regex, want), (substitute, got)):
            try:
                out.append(f(text, env))
            except ScenarioError as e:
                out.append(f"error: {e}")
        assert got == want * 2, (text, env)
    assert substitute("touch heap +{(i % 1024) * 64K} 64K", {"i": 1025}) == "touch heap +65536 64K"
