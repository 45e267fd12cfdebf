# SPDX-License-Identifier: GPL-2.0-only
"""ptlab decode HEX: every bit of a raw descriptor, by kernel name."""

from __future__ import annotations

import argparse
import json

from tui.decode_text import describe, parse_value
from tui.errors import UserError

NAME = "decode"
HELP = "decode a raw arm64 descriptor (present, PROT_NONE or swap)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("value", metavar="HEX", help="raw 64-bit descriptor, e.g. 0x00f8000080010f43")
    p.add_argument("--granule", default="4K", help="4K, 16K or 64K (default 4K)")
    p.add_argument("--kernel", default="v7.0", help="kernel profile, for the layout (default v7.0)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    from engine.arch.profiles import KernelProfileError, get_profile
    from engine.decode import decode
    from engine.granule import granule
    from engine.pte import LAYOUTS

    value = parse_value(args.value)
    try:
        g = granule(args.granule)
        profile = get_profile(args.kernel)
    except (ValueError, KernelProfileError) as e:
        raise UserError(f"decode: {e}") from None
    d = decode(value, g, LAYOUTS[profile.layout], profile)
    if args.json:
        out = d.as_dict()
        out["kernel"] = profile.name
        print(json.dumps(out))
        return 0
    print(describe(value, d, g.name, profile.name))
    return 0


