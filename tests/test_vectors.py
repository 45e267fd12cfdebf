# SPDX-License-Identifier: GPL-2.0-only
"""The shared conformance vectors: ~10k ptep calls on every granule, v6.9 and
v7.0, checked against the kernel's contpte.c / pgtable.h. Every call must
replay exactly: return value, TLB flushes and every changed descriptor."""

from collections import Counter
from pathlib import Path

import pytest

from engine import vectors

VECTORS = Path(__file__).resolve().parents[2] / "shared" / "vectors" / "ptep-vectors.json"
LOCAL_COPY = Path(__file__).resolve().parent / "data" / "ptep-vectors.json"


def _vector_file() -> Path:
    for p in (VECTORS, LOCAL_COPY):
        if p.exists():
            return p
    pytest.fail(f"conformance vectors not found at {VECTORS} or {LOCAL_COPY}")


@pytest.fixture(scope="module")
def data():
    return vectors.load(_vector_file())


def test_vectors_cover_all_granules_and_both_kernels(data):
    kinds = Counter((t["granule"], t["kernel"]) for t in data["traces"])
    assert {g for g, _ in kinds} == {4096, 16384, 65536}
    assert {k for _, k in kinds} == {"v6.9", "v7.0"}
    assert sum(len(t["calls"]) for t in data["traces"]) > 9000


def test_every_vector_call_replays_exactly(data):
    mismatches = list(vectors.replay(data))
    assert not mismatches, "\n".join(str(m) for m in mismatches[:20])


def test_replay_detects_a_wrong_profile(data):
    """The check can fail: v6.9 traces replayed as v7.0 differ in
    ptep_set_access_flags (gathered vs raw no-op test)."""
    traces = [dict(t, kernel="v7.0") for t in data["traces"] if t["kernel"] == "v6.9"]
    mismatches = list(vectors.replay({"traces": traces}))
    assert mismatches
    assert {m.call for m in mismatches} == {"ptep_set_access_flags"}
