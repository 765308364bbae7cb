"""Connection quality: the score, the time kept per level, and the room telling everyone."""

from __future__ import annotations

import asyncio

from sfu_client import Client

from sfu import Router
from sfu.room import observer as ev
from sfu.room.quality import LinkSample, QualityMonitor, score


def test_score_levels() -> None:
    assert score(LinkSample(0.0, 20, 5, True)) == "excellent"
    assert score(LinkSample(0.02, 200, 5, True)) == "good"
    assert score(LinkSample(0.10, 20, 5, True)) == "poor"
    assert score(LinkSample(0.0, 600, 5, True)) == "poor"
    assert score(LinkSample(0.0, None, None, False)) == "lost"


def test_time_is_charged_to_the_level_it_had() -> None:
    m = QualityMonitor()
    assert m.update("pe-1", "7", LinkSample(0.0, 10, 1, True), now=0) == "excellent"
    assert m.update("pe-1", "7", LinkSample(0.2, 10, 1, True), now=2) == "poor"
    assert m.update("pe-1", "7", LinkSample(0.2, 10, 1, True), now=62) is None  # unchanged: no news
    assert m.update("pe-1", "7", LinkSample(0.0, 10, 1, True), now=64) == "excellent"
    m.forget("pe-1", "7", now=70)
    assert m.seconds == {"7": {"excellent": 8.0, "poor": 62.0}}


async def test_everyone_hears_each_participants_quality_and_the_room_keeps_it(router: Router, make_client) -> None:
    summaries: list[ev.QualitySummaryEvent] = []
    router.observer.on(ev.QUALITY_SUMMARY, summaries.append)
    a: Client = await make_client("1")
    b: Client = await make_client("2")
    assert a.peer_id and b.peer_id
    await a.wait_frames(b.peer_id, "camera", 5)
    for me in (a, b):
        for other in (a, b):
            await me.wait_message("quality", lambda m, o=other: m["peer_id"] == o.peer_id)
    levels = {m["quality"] for m in a.of_type("quality")}
    assert levels <= {"excellent", "good"}, a.of_type("quality")  # loopback: nobody is lost or poor
    # someone arriving later hears the levels at once, not at their next change
    c: Client = await make_client("3")
    for other in (a, b):
        await c.wait_for(lambda o=other: any(m["peer_id"] == o.peer_id for m in c.of_type("quality")), timeout=1.5)
    await asyncio.sleep(2.5)
    await router.close()
    (summary,) = summaries
    assert {"1", "2"} <= set(summary.seconds)
    assert all(sum(summary.seconds[key].values()) > 1.0 for key in ("1", "2"))
