"""Subscribers hold a lossy publisher's video a repair's time (sfu/room/playout.py): the room
tells everyone but the publisher how long a repair of that uplink takes while repairs happen,
nothing on a clean link, and 0 again once the link stayed clean for a while."""

from __future__ import annotations

from aiortc.rtcrtpparameters import RTCRtpCodecParameters, RTCRtpReceiveParameters

from sfu.config import SfuConfig
from sfu.room import room_messages as msg
from sfu.room.playout import HOLD_SECONDS, MAX_MS, PlayoutDelays, delay_ms
from sfu.room.producer import Producer
from sfu.room.router import Router
from sfu_fakes import ManualClock, make_producer


class FakePeer:
    def __init__(self, peer_id: str, producers: dict[str, Producer]) -> None:
        self.id = peer_id
        self.producers = producers
        self.consumers: dict[str, object] = {}
        self.inbox: list[msg.RoomMessage] = []

    def notify(self, message: msg.RoomMessage) -> None:
        self.inbox.append(message)


def _camera(clock: ManualClock) -> Producer:
    p = make_producer(clock)
    p.configure(
        RTCRtpReceiveParameters(codecs=[RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)])
    )
    return p


def _repair(p: Producer, clock: ManualClock, seq: int, seconds: float) -> None:
    """A packet lost on the uplink, asked for, and back ``seconds`` later."""
    nack = p.forwarder.nack
    assert nack is not None
    nack.missing([seq])
    clock.now += seconds
    nack.arrived(seq)


def _holds(peer: FakePeer) -> list[msg.PlayoutDelay]:
    return [m for m in peer.inbox if isinstance(m, msg.PlayoutDelay)]


async def test_subscribers_hold_a_lossy_publishers_video_and_let_go_once_it_is_clean() -> None:
    clock = ManualClock()
    camera = _camera(clock)
    router = Router(room_id="r", max_peers=5, app_data={}, config=SfuConfig(), clock=clock)
    try:
        mentor = FakePeer("pe-m", {camera.id: camera})
        learners = [FakePeer("pe-a", {}), FakePeer("pe-b", {})]
        router.peers = {p.id: p for p in (mentor, *learners)}  # type: ignore[misc]
        for _ in range(3):  # a clean link: nothing to hold, nothing said
            router._update_playout()
            clock.now += 0.5
        assert not any(_holds(p) for p in (mentor, *learners))

        # repairs taking 100 ms: 1.5 x 100 + 30 = 180 ms, to every subscriber, not the publisher
        _repair(camera, clock, 10, 0.1)
        router._update_playout()
        for learner in learners:
            assert _holds(learner) == [msg.PlayoutDelay("pe-m", "camera", 180)]
        assert not _holds(mentor)

        # more repairs of about the same time: no new message for a few milliseconds
        _repair(camera, clock, 11, 0.11)
        router._update_playout()
        assert len(_holds(learners[0])) == 1

        # the link is clean again: held a while longer (losses come in bursts), then let go
        clock.now += HOLD_SECONDS - 1
        router._update_playout()
        assert len(_holds(learners[0])) == 1
        clock.now += 2
        router._update_playout()
        assert _holds(learners[0])[-1] == msg.PlayoutDelay("pe-m", "camera", 0)
        assert _holds(learners[1])[-1] == msg.PlayoutDelay("pe-m", "camera", 0)
    finally:
        router.peers = {}
        await router.close()


def test_the_hold_follows_the_repair_time_within_bounds() -> None:
    assert delay_ms(0.08) == 150
    assert delay_ms(5.0) == MAX_MS  # a conversation, even on a terrible link
    delays = PlayoutDelays()
    assert delays.update("pr-1", 0, 0.0, 0.0) is None
    assert delays.update("pr-1", 3, 0.1, 1.0) == 180
    assert delays.update("pr-1", 9, 0.3, 2.0) == min(480, MAX_MS)
    delays.forget([])
    assert delays.announced == {}
