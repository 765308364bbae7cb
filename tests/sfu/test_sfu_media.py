"""End to end: aiortc clients exchange media through the SFU."""

from __future__ import annotations

import asyncio

from sfu import Router
from sfu_client import Client


async def test_two_participants_decode_each_other(router: Router, make_client) -> None:
    a: Client = await make_client("alice")
    b: Client = await make_client("bob")
    for me, other in ((a, b), (b, a)):
        assert other.peer_id is not None
        await me.wait_frames(other.peer_id, "camera", 10)
        await me.wait_frames(other.peer_id, "mic", 10)
    stats = router.stats()
    assert stats.peers == 2 and stats.producers == 4 and stats.consumers == 4
    assert stats.packets_forwarded > 0
