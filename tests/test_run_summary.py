# SPDX-License-Identifier: GPL-2.0-only
"""The end-of-run summary lines (tests/run_summary.py) add up every xdist worker's counts."""

from __future__ import annotations

import pytest
from run_summary import Tally, render


def test_counts_from_two_workers_add_up_into_one_line():
    template = "template:fuzz: {examples} examples, {slow} slow"
    assert render([{template: {"examples": 3}}, {template: {"examples": 4}}]) == ["fuzz: 7 examples, 0 slow"]


def test_a_render_function_is_imported_by_name_in_the_controller():
    key = "function:scenario_fuzz:hypothesis_summary"
    a = {key: {"grammar": 2, "grammar ops": 5, "grammar ran": 1, "grammar error": 1}}
    b = {key: {"text": 1, "text error": 1}}
    assert render([a, b]) == [
        "scenario fuzz: 3 hypothesis examples (2 from the grammar, 5 ops run, ended by 1 a FILE:LINE error, "
        "1 running to the end; 1 arbitrary texts, 0 ops run, ended by 1 a FILE:LINE error), every one ran or "
        "failed with fuzz.pts:LINE"]


def _local_render(counts):  # type: ignore[no-untyped-def]
    return ""


def test_a_render_function_in_a_test_module_is_refused():
    # the controller would have to import a test module (and everything it imports) to print the line
    with pytest.raises(ValueError, match="helper module"):
        Tally(_local_render)
