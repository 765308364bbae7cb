"""A real aiortc client speaking the room protocol to the engine in memory."""

from __future__ import annotations

import asyncio
import fractions
import json
import math
from collections import defaultdict
from collections.abc import Callable
from typing import Any, Optional

import av
import numpy as np
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceServer,
    RTCIceTransportPolicy,
    RTCPeerConnection,
    RTCSessionDescription,
    VideoStreamTrack,
)
from aiortc.mediastreams import AUDIO_PTIME, AudioStreamTrack

from sfu import ParticipantInfo, Router, serve_participant

WAIT = 40.0


class QueueChannel:
    """The server's end of an in-memory WebSocket."""

    def __init__(self) -> None:
        self.to_server: asyncio.Queue[Optional[str]] = asyncio.Queue()
        self.to_client: asyncio.Queue[Optional[dict[str, Any]]] = asyncio.Queue()
        self.close_code: Optional[int] = None
        self.close_reason = ""

    async def send_json(self, obj: Any) -> None:
        json.dumps(obj)  # the real channel would serialize it
        await self.to_client.put(obj)

    async def receive_text(self) -> Optional[str]:
        return await self.to_server.get()

    async def close(self, code: int, reason: str) -> None:
        if self.close_code is None:
            self.close_code = code
            self.close_reason = reason
            await self.to_client.put(None)


class TinyVideo(VideoStreamTrack):
    """64x48 frames at 30 fps: cheap to encode and decode on a 2-core box."""

    def __init__(self, shade: int = 80) -> None:
        super().__init__()
        self.shade = shade

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        img = np.full((48, 64, 3), self.shade, dtype=np.uint8)
        img[:, (pts // 3000) % 64] = 255  # a moving bar keeps the encoder busy-ish
        frame = av.VideoFrame.from_ndarray(img, format="bgr24")
        frame.pts = pts
        frame.time_base = time_base
        return frame


class ToneAudio(AudioStreamTrack):
    """A loud 440 Hz tone, so the audio-level extension reports speech."""

    _phase = 0

    async def recv(self) -> av.AudioFrame:
        await super().recv()  # paces us at one 20 ms frame
        samples = int(AUDIO_PTIME * 48000)
        pts = self._phase  # in 1/48000 s like the samples (the parent counts in 1/8000)
        t = (np.arange(samples) + pts) / 48000
        self._phase += samples
        data = (np.sin(2 * math.pi * 440 * t) * 20000).astype(np.int16).reshape(1, -1)
        tone = av.AudioFrame.from_ndarray(data, format="s16", layout="mono")
        tone.sample_rate = 48000
        tone.pts = pts
        tone.time_base = fractions.Fraction(1, 48000)
        return tone


class Client:
    """Joins a router through ``serve_participant`` and counts decoded frames."""

    def __init__(
        self,
        router: Router,
        user_key: str,
        *,
        video: bool = True,
        audio: bool = True,
        screen: bool = False,
        tone: bool = False,
        ice_servers: Optional[list[RTCIceServer]] = None,
        ice_policy: str = "all",
        negotiate: bool = True,
    ) -> None:
        self.negotiate = negotiate
        self.router = router
        self.user_key = user_key
        self.channel = QueueChannel()
        policy = RTCIceTransportPolicy.RELAY if ice_policy == "relay" else RTCIceTransportPolicy.ALL
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=ice_servers or [], iceTransportPolicy=policy))
        self.messages: list[dict[str, Any]] = []
        self.peer_id: Optional[str] = None
        self.frames: dict[str, int] = defaultdict(int)  # by mid
        self.mid_owner: dict[str, tuple[str, str]] = {}  # mid -> (peer_id, source)
        self.closed = False
        self._answers_applied = 0
        #: rewrites each offer this client sends (a test speaks with a browser's payload types)
        self.munge_offer: Callable[[str], str] = lambda sdp: sdp
        #: while set to an unset event, the server's offers wait for it before they are answered
        self.hold_answers: Optional[asyncio.Event] = None
        self._changed = asyncio.Event()
        self._tasks: list[asyncio.Future[Any]] = []
        self.local_tracks: list[MediaStreamTrack] = []
        self.sources: dict[str, str] = {}
        if video:
            self._add(TinyVideo(), "camera")
        if audio:
            self._add(ToneAudio() if tone else AudioStreamTrack(), "mic")
        if screen:
            self._add(TinyVideo(shade=200), "screen")
        if not self.local_tracks:
            # nothing to send: offer one receive-only m-line (the protocol
            # wants a client offer first; the server then offers its tracks)
            self.pc.addTransceiver("audio", direction="recvonly")
        self.pc.on("track", self._on_track)

    # ------------------------------------------------------------ driving

    async def join(self, *, offer: bool = True) -> None:
        self._tasks.append(
            asyncio.ensure_future(
                serve_participant(self.router, self.channel, ParticipantInfo(self.user_key, display_name=self.user_key))
            )
        )
        self._tasks.append(asyncio.ensure_future(self._read()))
        await self.send({"type": "join", "display_name": self.user_key})
        joined = await self.wait_message("joined")
        self.peer_id = joined["peer_id"]
        if offer:
            await self.publish()

    async def publish(self) -> None:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        count = self._answers_applied
        sdp = self.munge_offer(self.pc.localDescription.sdp)
        await self.send({"type": "offer", "sdp": sdp, "sources": self.sources})
        await self.wait_for(lambda: self._answers_applied > count)

    async def add_screen(self) -> None:
        track = TinyVideo(shade=200)
        self._add(track, "screen")
        await self.publish()

    async def send(self, message: Any) -> None:
        await self.channel.to_server.put(message if isinstance(message, str) else json.dumps(message))

    async def close(self, *, leave: bool = True) -> None:
        if self.closed:
            return
        self.closed = True
        if leave:
            await self.send({"type": "leave"})
        else:
            await self.channel.to_server.put(None)
        await self.pc.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # ------------------------------------------------------------ observing

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m.get("type") == kind]

    async def wait_message(
        self, kind: str, predicate: Callable[[dict[str, Any]], bool] = lambda m: True
    ) -> dict[str, Any]:
        return await self.wait_for(
            lambda: next((m for m in reversed(self.messages) if m.get("type") == kind and predicate(m)), None)
        )

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = WAIT) -> Any:
        async def loop() -> Any:
            while True:
                value = predicate()
                if value:
                    return value
                self._changed.clear()
                await self._changed.wait()

        return await asyncio.wait_for(loop(), timeout)

    def frames_from(self, peer_id: str, source: str) -> int:
        return sum(n for mid, n in self.frames.items() if self.mid_owner.get(mid) == (peer_id, source))

    async def wait_frames(self, peer_id: str, source: str, count: int, timeout: float = WAIT) -> None:
        start = self.frames_from(peer_id, source)
        await self.wait_for(lambda: self.frames_from(peer_id, source) >= start + count, timeout)

    # ------------------------------------------------------------ private

    def _add(self, track: MediaStreamTrack, source: str) -> None:
        self.pc.addTrack(track)
        self.local_tracks.append(track)
        self.sources[track.id] = source

    def _pulse(self) -> None:
        self._changed.set()

    async def _read(self) -> None:
        while True:
            message = await self.channel.to_client.get()
            if message is None:
                self.messages.append({"type": "_closed", "code": self.channel.close_code})
                self._pulse()
                return
            self.messages.append(message)
            if message["type"] == "tracks":
                for track in message["tracks"]:
                    if track.get("mid") is not None:
                        self.mid_owner[track["mid"]] = (message["peer_id"], track["source"])
            elif not self.negotiate:
                pass
            elif message["type"] == "answer" and not self.closed:
                await self.pc.setRemoteDescription(RTCSessionDescription(sdp=message["sdp"], type="answer"))
                self._answers_applied += 1
            elif message["type"] == "offer" and not self.closed:
                if self.hold_answers is not None:
                    self._pulse()
                    await self.hold_answers.wait()
                await self.pc.setRemoteDescription(RTCSessionDescription(sdp=message["sdp"], type="offer"))
                await self.pc.setLocalDescription(await self.pc.createAnswer())
                await self.send({"type": "answer", "sdp": self.pc.localDescription.sdp})
            self._pulse()

    def _on_track(self, track: MediaStreamTrack) -> None:
        transceiver = next(t for t in self.pc.getTransceivers() if t.receiver.track is track)
        self._tasks.append(asyncio.ensure_future(self._count(transceiver.mid, track)))

    async def _count(self, mid: str, track: MediaStreamTrack) -> None:
        try:
            while True:
                await track.recv()
                self.frames[mid] += 1
                self._pulse()
        except Exception:
            pass
