"""RTP payload for redundant audio (RFC 2198 RED), as Chromium sends Opus in it.

A RED packet carries the current Opus frame (the *primary* block, last) after copies of
the one or two frames before it (redundant blocks, each with its timestamp offset), so a
receiver that lost a packet finds its frame in the next one: audio survives random loss
without a retransmission round trip. Layout (RFC 2198 section 3): one 4-byte header per
redundant block (F=1, block PT, 14-bit timestamp offset, 10-bit length), a 1-byte header
for the primary (F=0, block PT), then the blocks' data in the same order.

The SFU never decodes: it either passes a RED packet through (the subscriber negotiated
RED too; ``retag`` writes the subscriber's Opus payload type into the block headers) or
hands a subscriber without RED (Firefox ESR 153 offers none) the primary block alone
(``primary``), which is exactly the Opus packet the publisher would have sent without RED.
The recorder uses ``blocks`` to unwrap, and to fill its own gaps from the redundancy.
"""

from __future__ import annotations

from typing import Optional


def primary(payload: bytes) -> Optional[tuple[int, int]]:
    """(block payload type, offset of the primary block's data) of a RED payload, or None
    when it is malformed or its primary block is empty (nothing to forward)."""
    n = len(payload)
    i = 0
    skip = 0
    while True:
        if i >= n:
            return None
        b = payload[i]
        if not b & 0x80:
            start = i + 1 + skip
            return (b & 0x7F, start) if start < n else None
        if i + 4 > n:
            return None
        skip += ((payload[i + 2] & 0x03) << 8) | payload[i + 3]
        i += 4


def blocks(payload: bytes) -> Optional[list[tuple[int, int, bytes]]]:
    """Every block of a RED payload as (payload type, timestamp offset, data), oldest first,
    the primary (offset 0) last; None when malformed."""
    n = len(payload)
    headers: list[tuple[int, int, int]] = []
    i = 0
    while True:
        if i >= n:
            return None
        b = payload[i]
        if not b & 0x80:
            headers.append((b & 0x7F, 0, -1))
            i += 1
            break
        if i + 4 > n:
            return None
        offset = (payload[i + 1] << 6) | (payload[i + 2] >> 2)
        length = ((payload[i + 2] & 0x03) << 8) | payload[i + 3]
        headers.append((b & 0x7F, offset, length))
        i += 4
    out: list[tuple[int, int, bytes]] = []
    for pt, offset, length in headers:
        if length < 0:
            length = n - i
        if length < 0 or i + length > n:
            return None
        out.append((pt, offset, payload[i : i + length]))
        i += length
    return out


def retag(payload: bytes, pt_map: dict[int, int]) -> bytes:
    """``payload`` with each block's payload type mapped through ``pt_map`` (publisher ->
    subscriber numbering; unmapped types stay); the same object when nothing changes."""
    n = len(payload)
    i = 0
    changes: list[tuple[int, int]] = []
    while i < n:
        b = payload[i]
        pt = b & 0x7F
        mapped = pt_map.get(pt, pt)
        if mapped != pt:
            changes.append((i, (b & 0x80) | mapped))
        if not b & 0x80:
            break
        i += 4
    if not changes:
        return payload
    out = bytearray(payload)
    for i, value in changes:
        out[i] = value
    return bytes(out)


def wrap(pt: int, frames: list[tuple[int, bytes]], primary_data: bytes) -> bytes:
    """A RED payload: redundant ``frames`` as (timestamp offset, data), oldest first, then the
    primary; all blocks of payload type ``pt`` (what Chromium's encoder does; for tests and
    the load generator)."""
    head = b"".join(
        bytes([0x80 | pt, (offset >> 6) & 0xFF, ((offset & 0x3F) << 2) | (len(data) >> 8), len(data) & 0xFF])
        for offset, data in frames
    )
    return head + bytes([pt]) + b"".join(data for _, data in frames) + primary_data
