# SPDX-License-Identifier: GPL-2.0-only
"""ptlab scenarios: the built-in scenarios with their one-line descriptions."""

from __future__ import annotations

import argparse
import json

NAME = "scenarios"
HELP = "list the built-in scenarios"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    from engine.scenario import builtin_list

    items = builtin_list()
    if args.json:
        print(json.dumps({"scenarios": [{"name": n, "description": d} for n, d in items]}))
        return 0
    width = max((len(n) for n, _ in items), default=0)
    for n, d in items:
        print(f"{n:<{width}}  {d}")
    return 0
