# SPDX-License-Identifier: GPL-2.0-only
"""Chunked, shared copies of big flat buffers, for checkpoints.

The live machine keeps its per-page metadata in flat ``array``/``bytearray``
buffers (one slot per page, fast to index). A checkpoint freezes each buffer
into a tuple of immutable ``bytes`` chunks; a chunk whose content equals the
same chunk of the previous checkpoint is shared with it rather than copied,
so a session's checkpoints cost memory for what changed between them, and a
snapshot stores each distinct chunk once (the container shares values of 512
bytes or more by content). Restoring joins the chunks back into a buffer.

Equality is decided by comparing bytes (memcmp), never by a hash.
"""

from __future__ import annotations

from array import array

CHUNK = 1 << 14  # bytes


def freeze(buf: array[int] | bytearray, prev: tuple[bytes, ...] | None = None) -> tuple[bytes, ...]:
    """The content of buf as chunks, sharing the chunks of prev that are unchanged."""
    data = buf.tobytes() if isinstance(buf, array) else bytes(buf)
    n = len(data)
    if prev is not None and (len(prev) != (n + CHUNK - 1) // CHUNK or sum(map(len, prev)) != n):
        prev = None
    out: list[bytes] = []
    append = out.append
    startswith = data.startswith
    for k, lo in enumerate(range(0, n, CHUNK)):
        if prev is not None:
            p = prev[k]
            if startswith(p, lo) and len(p) == min(CHUNK, n - lo):
                append(p)
                continue
        append(data[lo:lo + CHUNK])
    return tuple(out)


def thaw_array(typecode: str, chunks: tuple[bytes, ...] | list[bytes]) -> array[int]:
    a = array(typecode)
    a.frombytes(b"".join(chunks))
    return a


def thaw_bytearray(chunks: tuple[bytes, ...] | list[bytes]) -> bytearray:
    return bytearray(b"".join(chunks))


def as_chunks(value: bytes | list[bytes] | tuple[bytes, ...]) -> tuple[bytes, ...]:
    """A buffer from a plain checkpoint: one bytes value (older files) or a list of chunks."""
    if isinstance(value, (bytes, bytearray)):
        b = bytes(value)
        return tuple(b[lo:lo + CHUNK] for lo in range(0, len(b), CHUNK))
    if not all(isinstance(c, (bytes, bytearray)) for c in value):
        raise ValueError("malformed chunked buffer in checkpoint")
    return tuple(bytes(c) for c in value)
