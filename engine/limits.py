# SPDX-License-Identifier: GPL-2.0-only
"""The largest things one machine will model.

Everything the model allocates grows with one of these: per-page metadata
with physical memory (about 8 bytes a page), swap maps with swap, page
tables with the address space mapped (8 bytes a page), page-cache indexes
with file sizes (8 bytes a page), session records with ops. Bounding them
keeps any scenario -- however hostile -- within about a gigabyte, and a
mistake like ``mmap x 1T`` or ``repeat 1000000000`` is a clear error at its
line instead of an hour of swapping. Each bound is far above what the
built-in scenarios use (1 GiB mappings, 4 GiB of memory, tens of processes,
a million ops).

A limit is an error *before* anything changes (ScenarioError), like any
other bad input; the numbers are documented in docs/scenarios.md.
"""

from __future__ import annotations

from engine.errors import ScenarioError

GiB = 1 << 30

MAX_OPS = 1 << 24  # ops in one scenario, loops unrolled (16,777,216)
MAX_SIZES = {  # the size directives
    "memory": 64 * GiB,
    "swap": 64 * GiB,
    "readahead": 64 * GiB,
    "fault_around": 64 * GiB,
}
MAX_MAPPED = 64 * GiB  # all VMAs of all live processes together
MAX_FILES = 64 * GiB  # all files and shmem objects together (they outlive their mappings)
MAX_PROCESSES = 10_000  # processes created in one machine, live or exited
MAX_MAP_COUNT = 65_530  # VMAs in one process (the kernel's vm.max_map_count)
MAX_TOTAL_VMAS = 1_000_000  # VMAs of all live processes together


def human(n: int) -> str:
    for unit, shift in (("T", 40), ("G", 30), ("M", 20), ("K", 10)):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift}{unit}"
    return f"{n:#x}"


def check_size(name: str, value: int) -> int:
    """A size directive's value, or ScenarioError if above its limit."""
    limit = MAX_SIZES[name]
    if value > limit:
        raise ScenarioError(f"{name} {human(value)} is above ptlab's limit of {human(limit)}")
    return value
