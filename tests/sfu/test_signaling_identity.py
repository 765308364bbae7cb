"""Issue 14: the name others see in the room is the account's, not what the client sends."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from sfu_client import QueueChannel

from sfu import ParticipantInfo, serve_participant


async def _next(channel: QueueChannel, kind: str) -> dict[str, Any]:
    while True:
        msg = await asyncio.wait_for(channel.to_client.get(), 5)
        assert msg is not None, f"closed before {kind}"
        if msg["type"] == kind:
            return msg


async def test_join_display_name_is_ignored(engine) -> None:
    router = engine.create_router("identity", max_peers=4)
    a, b = QueueChannel(), QueueChannel()
    tasks = [
        asyncio.ensure_future(
            serve_participant(router, a, ParticipantInfo("1", display_name="Ann Learner", role="learner"))
        ),
        asyncio.ensure_future(
            serve_participant(router, b, ParticipantInfo("2", display_name="Ben Mentor", role="mentor"))
        ),
    ]
    try:
        await a.to_server.put(json.dumps({"type": "join", "display_name": "Marie Curie (Mentor)"}))
        await _next(a, "joined")
        await b.to_server.put(json.dumps({"type": "join", "display_name": 5}))  # still accepted
        joined = await _next(b, "joined")
        (other,) = joined["participants"]
        assert other["user"]["display_name"] == "Ann Learner" and other["user"]["role"] == "learner"
        arrived = await _next(a, "participant-joined")
        assert arrived["user"]["display_name"] == "Ben Mentor"
    finally:
        for ch in (a, b):
            await ch.to_server.put(None)
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 10)
