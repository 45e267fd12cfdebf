# SPDX-License-Identifier: GPL-2.0-only
"""compare_sessions: totals side by side and the first op where tables part."""

import json
from pathlib import Path

from engine.compare_configs import Run, compare_sessions
from engine.ptep_machine import ApiMachine, ops_from_vector_trace
from engine.session import Session

DATA = Path(__file__).resolve().parent / "data" / "ptep-vectors.json"


def runs_for(trace, kernels):
    ops = ops_from_vector_trace(trace)
    return [Run({"kernel": k, "policy": "mainline", "cpu": trace["cpu"]},
                Session(lambda k=k: ApiMachine(trace["granule"], k, trace["cpu"]), ops)) for k in kernels]


def test_identical_configs_do_not_diverge():
    trace = json.loads(DATA.read_text())["traces"][0]
    c = compare_sessions(runs_for(trace, ["v6.9", "v6.9"]))
    assert c.first_divergence is None and c.op_cost_diffs == []
    d = c.as_dict()
    assert d["runs"][0]["totals"] == d["runs"][1]["totals"]
    assert d["runs"][0]["totals"]["ops"] == len(trace["calls"])


def test_v69_vs_v70_first_divergence_is_set_access_flags():
    """The traces' only v6.9/v7.0 difference on the arch layer is the
    set_access_flags no-op test: the first divergence must be such a call,
    and the descriptor values must differ in the reported place."""
    traces = json.loads(DATA.read_text())["traces"]
    found = None
    for trace in traces:
        if trace["kernel"] != "v6.9":
            continue
        c = compare_sessions(runs_for(trace, ["v6.9", "v7.0"]))
        if c.first_divergence is not None:
            found = c
            break
    assert found is not None
    div = found.first_divergence
    assert "ptep_set_access_flags" in div.text
    assert div.values[0] != div.values[1] and div.addr is not None
    assert found.as_dict()["first_divergence"]["op"] == div.op + 1
