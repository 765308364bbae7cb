"""Dynacast: which simulcast layers a publisher is asked to send, from what its subscribers
show (packet level, no network). A layer nobody needs pauses only after it was unneeded
for a while, comes back at once, and the lowest one never stops."""

from __future__ import annotations

import struct
from typing import Optional

import pytest
from aiortc.rtcrtpparameters import RTCRtpCodecParameters, RTCRtpReceiveParameters, RTCRtpSendParameters

from sfu.room import room_messages as msg
from sfu.room.consumer import Consumer
from sfu.room.dynacast import PAUSE_AFTER, Dynacast, LayerDemand, highest_needed, layer_for_size
from sfu.room.producer import Producer
from sfu.room.signaling import to_wire
from sfu.rtp import simulcast
from sfu.rtp.forwarding import CallSink
from sfu.rtp.layers import LayerState
from sfu_fakes import ManualClock, make_producer

HEIGHTS = (180, 360, 720)  # the page's q, h, f of a 1280x720 camera
SSRCS = (0x100, 0x200, 0x300)


def _keyframe(seq: int, ssrc: int, height: int) -> bytes:
    """An RTP packet carrying the start of a VP8 keyframe ``height`` rows tall."""
    header = struct.pack("!BBHII", 0x80, 96, seq, seq * 3000, ssrc)
    frame = b"\x00\x00\x00\x9d\x01\x2a" + struct.pack("<HH", height * 16 // 9, height)
    return header + b"\x10" + frame + b"x" * 20


def _publisher(clock: ManualClock) -> Producer:
    p = make_producer(clock)
    p.enable_simulcast(simulcast.SimulcastOffer(("q", "h", "f"), 10, 11))
    p.configure(
        RTCRtpReceiveParameters(codecs=[RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)])
    )
    for layer, ssrc in enumerate(SSRCS):
        p.learn_layer_ssrc(layer, ssrc)
    # a first subscriber: the forwarders look at keyframes (and learn heights) only while
    # someone consumes them
    _subscriber(p, clock, None)
    for layer, ssrc in enumerate(SSRCS):
        p.layers[layer].on_rtp(_keyframe(1, ssrc, HEIGHTS[layer]))
    assert [s.height for s in p.layer_states()] == list(HEIGHTS)
    return p


def _subscriber(p: Producer, clock: ManualClock, shows: Optional[int]) -> Consumer:
    c = Consumer(subscriber_id="pe-" + str(shows), producer=p, clock=clock, history_size=16)
    c.configure(
        RTCRtpSendParameters(codecs=[RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=100)]),
        CallSink(lambda _pkt: None),
        "cname",
    )
    c.max_height = shows
    c.update_layer()
    return c


def test_each_layer_reports_the_frames_it_sends_and_a_subscriber_skips_a_starved_one() -> None:
    """Frames counted by the marker bit per layer: the 720p layer at 9 fps beside 360p at 24
    (Chromium under loss) is not what a full-screen tile gets."""
    clock = ManualClock()
    p = _publisher(clock)
    p.layer_states()  # the measurement window opens
    for n in range(24):
        clock.now += 1 / 24
        for layer, ssrc in enumerate(SSRCS):
            if layer < 2 or n % 8 < 3:  # the top layer sends 3 frames of every 8
                p.layers[layer].on_rtp(
                    struct.pack("!BBHII", 0x80, 0x80 | 96, 2 + n, n * 3750, ssrc) + b"\x10" + b"x" * 20
                )
    states = p.layer_states()
    assert [round(s.fps) for s in states] == [24, 24, 9]
    full_screen = _subscriber(p, clock, 1080)
    assert full_screen.switch is not None and full_screen.switch.target == 1


def _send_second(p: Producer, clock: ManualClock, top_frames: int, seq: int) -> int:
    """One second of the camera: 24 frames on q and h, ``top_frames`` of them on f."""
    for n in range(24):
        clock.now += 1 / 24
        seq += 1
        for layer, ssrc in enumerate(SSRCS):
            if layer < 2 or n * top_frames // 24 != (n + 1) * top_frames // 24:
                p.layers[layer].on_rtp(
                    struct.pack("!BBHII", 0x80, 0x80 | 96, seq, seq * 3750, ssrc) + b"\x10" + b"x" * 20
                )
        if n % 12 == 11:
            p.layer_states()  # the router's tick (0.5 s)
    return seq


def test_a_learner_taken_off_a_starved_top_layer_is_not_sent_back_to_it_at_every_flicker() -> None:
    """Chromium under uplink loss starves its 720p layer to 13-20 fps beside 24 below: at the
    frame-rate thresholds. Each climb back costs a keyframe of every layer and each fall a
    wait for one, which a learner sees; so the fall holds for 8 s, then 16 after a failed
    climb, and a layer that stays healthy is climbed back to once the hold ends."""
    clock = ManualClock()
    p = _publisher(clock)
    c = _subscriber(p, clock, 1080)
    assert c.switch is not None
    c.switch.current = 2  # on the top layer
    seq = 10
    seq = _send_second(p, clock, 6, seq)  # the top layer starves: 6 fps
    c.update_layer()
    assert c.switch.target == 1 and c.starved.falls == 1
    c.switch.current = 1  # the switch happened at h's keyframe
    seq = _send_second(p, clock, 18, seq)  # 18 of 24: enough to climb by the frame-rate rule alone
    c.update_layer()
    assert c.switch.target == 1  # held
    for _ in range(8):
        seq = _send_second(p, clock, 18, seq)
        c.update_layer()
    assert c.switch.target == 2  # the hold ended on a healthy layer: back up
    c.switch.current = 2
    seq = _send_second(p, clock, 6, seq)  # starved again soon after the climb
    c.update_layer()
    assert c.switch.target == 1 and c.starved.falls == 2
    c.switch.current = 1
    for _ in range(12):
        seq = _send_second(p, clock, 18, seq)
        c.update_layer()
    assert c.switch.target == 1  # the failed climb doubled the hold to 16 s
    for _ in range(5):
        seq = _send_second(p, clock, 18, seq)
        c.update_layer()
    assert c.switch.target == 2


def test_a_starved_layer_hold_does_not_keep_a_subscriber_from_a_smaller_tile() -> None:
    clock = ManualClock()
    p = _publisher(clock)
    c = _subscriber(p, clock, 1080)
    assert c.switch is not None
    c.switch.current = 2
    _send_second(p, clock, 6, 10)
    c.update_layer()
    assert c.switch.target == 1
    c.switch.current = 1
    c.max_height = 150  # the learner opened the gallery: q is enough
    c.update_layer()
    assert c.switch.target == 0


def test_a_tile_needs_the_smallest_layer_at_least_as_tall_as_itself() -> None:
    states = [LayerState(True, 0, h) for h in HEIGHTS]
    assert layer_for_size(states, max_height=150, current=2) == 0
    assert layer_for_size(states, max_height=245, current=2) == 1  # a gallery tile at 1280x800
    assert layer_for_size(states, max_height=660, current=2) == 2  # the 1:1 stage
    assert layer_for_size(states, max_height=None, current=0) == 2  # size unknown: no limit
    assert layer_for_size(states, max_height=0, current=2) == 0  # hidden
    # a paused layer counts as if it sent (its height from its last keyframe) ...
    paused = [LayerState(True, 0, 180), LayerState(True, 0, 360), LayerState(False, 0, 720)]
    assert layer_for_size(paused, max_height=500, current=1) == 2
    # ... and a layer whose height was never seen may be the one that is tall enough
    unknown = [LayerState(True, 0, 180), LayerState(True, 0, 0), LayerState(True, 0, 0)]
    assert layer_for_size(unknown, max_height=245, current=0) == 2


def test_the_room_needs_the_largest_tile_and_every_layer_below_it() -> None:
    clock = ManualClock()
    p = _publisher(clock)
    gallery = [_subscriber(p, clock, 245) for _ in range(3)]
    assert highest_needed(p, gallery, recording=False) == 1
    phones = [_subscriber(p, clock, 120) for _ in range(2)]
    assert highest_needed(p, phones, recording=False) == 0
    # one learner goes full screen: the top layer is needed again
    full = _subscriber(p, clock, 800)
    assert highest_needed(p, gallery + [full], recording=False) == 2
    # a recording keeps the best layer; so does a producer nobody watches yet
    assert highest_needed(p, phones, recording=True) == 2
    assert highest_needed(p, [], recording=False) == 2
    # a subscriber whose page has not told its size yet may need anything
    assert highest_needed(p, phones + [_subscriber(p, clock, None)], recording=False) == 2


def test_a_layer_a_subscriber_is_on_is_not_taken_from_under_it() -> None:
    clock = ManualClock()
    p = _publisher(clock)
    c = _subscriber(p, clock, None)
    assert c.switch is not None
    c.switch.current = 2  # forwarding the top layer now
    c.max_height = 100  # the tile just shrank: the switch down waits for a keyframe of q
    assert highest_needed(p, [c], recording=False) == 2


def test_unneeded_layers_pause_after_a_while_and_resume_at_once() -> None:
    demand = LayerDemand(3, now=0.0)
    assert demand.active == [True, True, True]
    assert demand.update(1, now=0.5) is None  # f unneeded, but not for long yet
    assert demand.update(1, now=PAUSE_AFTER - 0.1) is None
    assert demand.update(1, now=PAUSE_AFTER + 0.1) == [True, True, False]
    assert demand.update(0, now=5.0) is None  # h unneeded from now
    assert demand.update(0, now=5.0 + PAUSE_AFTER + 0.1) == [True, False, False]
    # a tile grows: back on at once, the layers under it too
    assert demand.update(2, now=9.0) == [True, True, True]
    # a need that flickers does not make the encoder start and stop
    assert demand.update(0, now=10.0) is None
    assert demand.update(2, now=11.0) is None
    assert demand.update(0, now=11.0 + PAUSE_AFTER - 0.5) is None
    # the lowest layer never pauses, whatever is asked
    assert demand.update(-1, now=30.0) == [True, False, False]
    with pytest.raises(TypeError):
        LayerDemand(0, now=0.0)


def test_the_publisher_is_told_by_rid_only_when_something_changes() -> None:
    clock = ManualClock()
    p = _publisher(clock)
    small = [_subscriber(p, clock, 245), _subscriber(p, clock, 200)]
    dynacast = Dynacast()
    assert dynacast.update(p, small, recording=False, now=clock.now) is None  # all on, as a publisher starts
    clock.now += PAUSE_AFTER + 0.5
    change = dynacast.update(p, small, recording=False, now=clock.now)
    assert change is not None and change.active == {"q": True, "h": True, "f": False} and not change.resumed
    assert dynacast.update(p, small, recording=False, now=clock.now + 1) is None
    small[0].max_height = 700  # full screen
    change = dynacast.update(p, small, recording=False, now=clock.now + 1.2)
    assert change is not None and change.active == {"q": True, "h": True, "f": True} and change.resumed
    assert (dynacast.resumed, dynacast.paused) == (1, 1)
    dynacast.forget([])
    assert dynacast.active(p.id) is None


def test_only_simulcast_producers_are_managed() -> None:
    clock = ManualClock()
    screen = make_producer(clock, source="screen", mid="2", track_id="s", keyframe_interval=1.0)
    assert Dynacast().update(screen, [], recording=False, now=0.0) is None


def test_the_wire_message_names_the_publishers_own_track_and_rids() -> None:
    wire = to_wire(msg.PublishLayers("pr-1", "1", "camera", {"q": True, "h": True, "f": False}))
    assert wire["type"] == "publish-layers"
    assert wire["mid"] == "1" and wire["source"] == "camera" and wire["track_id"] == "pr-1"
    assert wire["layers"] == {"q": True, "h": True, "f": False} == wire["data"]["layers"]


class FakePeer:
    """What the router needs of a peer here: its id, producers, consumers and inbox."""

    def __init__(self, peer_id: str, producers: dict[str, Producer], consumers: list[Consumer]) -> None:
        self.id = peer_id
        self.producers = producers
        self.consumers = {c.id: c for c in consumers}
        self.inbox: list[msg.RoomMessage] = []

    def notify(self, message: msg.RoomMessage) -> None:
        self.inbox.append(message)

    def set_video_size(self, track_id: str, height: Optional[int]) -> bool:
        for c in self.consumers.values():
            if c.producer is not None and c.producer.id == track_id:
                c.max_height = height
                c.update_layer()
                return True
        return False


async def test_the_router_tells_the_publisher_alone_and_resumes_on_a_larger_tile() -> None:
    from sfu.config import SfuConfig
    from sfu.room.router import Router

    clock = ManualClock()
    p = _publisher(clock)
    watchers = [_subscriber(p, clock, 245), _subscriber(p, clock, 245)]
    router = Router(room_id="r", max_peers=5, app_data={}, config=SfuConfig(), clock=clock)
    try:
        mentor = FakePeer("pe-m", {p.id: p}, [])
        learner = FakePeer("pe-l", {}, watchers[:1])
        other = FakePeer("pe-o", {}, watchers[1:])
        router.peers = {"pe-m": mentor, "pe-l": learner, "pe-o": other}  # type: ignore[dict-item]
        router._consumers_of[p.id] = {c.id: c for c in watchers}
        router._tick_dynacast()
        assert not mentor.inbox  # nothing unneeded for long yet
        clock.now += PAUSE_AFTER + 0.5
        router._tick_dynacast()
        assert mentor.inbox == [msg.PublishLayers(p.id, "1", "camera", {"q": True, "h": True, "f": False})]
        assert not learner.inbox and not other.inbox
        # a learner goes full screen: resumed in the same step, not at the next tick
        assert router.set_video_size(learner, p.id, 800)  # type: ignore[arg-type]
        assert mentor.inbox[-1] == msg.PublishLayers(p.id, "1", "camera", {"q": True, "h": True, "f": True})
        assert not learner.inbox and not other.inbox
        assert not router.set_video_size(learner, "pr-nobody", 800)  # type: ignore[arg-type]
    finally:
        router.peers = {}
        await router.close()


async def test_one_failing_tick_does_not_stop_the_rooms_ticks() -> None:
    """The room's 0.5 s tick (speaker, dynacast, quality) logs a failure and goes on: before,
    one exception ended that room's dynacast and active speaker until it closed."""
    import asyncio

    from sfu.config import SfuConfig
    from sfu.room.router import Router

    router = Router(room_id="r", max_peers=5, app_data={}, config=SfuConfig(), clock=ManualClock())
    calls: list[int] = []

    def dynacast() -> None:
        calls.append(len(calls))
        if len(calls) == 1:
            raise RuntimeError("a bad tick")

    router._tick_dynacast = dynacast  # type: ignore[method-assign]
    try:
        for _ in range(40):
            await asyncio.sleep(0.1)
            if len(calls) >= 3:
                break
        assert len(calls) >= 3
    finally:
        await router.close()
