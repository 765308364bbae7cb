"""A real aiortc participant speaking the documented room protocol over a WebSocket.

Used by the recording CPU benchmark and by the API and scale tests (through aiohttp's
test client) the way a foreign WebRTC client would: REST token, then ``/ws/room/{id}``,
offer its tracks, answer the server's offers, count decoded frames per remote track.
It lives with the benchmarks because they never import ``tests/``.
"""

from __future__ import annotations

import asyncio
import fractions
import json
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import av
import numpy as np
from aiohttp import ClientWebSocketResponse, WSMsgType
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription, VideoStreamTrack
from aiortc.mediastreams import AUDIO_PTIME, AudioStreamTrack

WAIT = 25.0


class SmallVideo(VideoStreamTrack):
    """64x48 frames: cheap to encode and decode on a 2-core machine."""

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        img = np.full((48, 64, 3), 90, dtype=np.uint8)
        img[:, (pts // 3000) % 64] = 255
        frame = av.VideoFrame.from_ndarray(img, format="bgr24")
        frame.pts, frame.time_base = pts, time_base
        return frame


class Tone(AudioStreamTrack):
    _phase = 0

    async def recv(self) -> av.AudioFrame:
        await super().recv()  # paces us at one 20 ms frame
        n = int(AUDIO_PTIME * 48000)
        pts = self._phase  # in 1/48000 s, like the samples (the parent counts in 1/8000)
        t = (np.arange(n) + pts) / 48000
        self._phase += n
        data = (np.sin(2 * np.pi * 440 * t) * 15000).astype(np.int16).reshape(1, -1)
        out = av.AudioFrame.from_ndarray(data, format="s16", layout="mono")
        out.sample_rate, out.pts, out.time_base = 48000, pts, fractions.Fraction(1, 48000)
        return out


class RoomParticipant:
    """One participant: its WebSocket, its peer connection, what it received."""

    def __init__(self, ws: ClientWebSocketResponse, *, video: bool = True, audio: bool = True) -> None:
        self.ws = ws
        self.pc = RTCPeerConnection()
        self.messages: list[dict[str, Any]] = []
        self.frames: dict[str, int] = defaultdict(int)  # by remote stream id (publisher peer_id) + kind
        self.peer_id: str | None = None
        self._changed = asyncio.Event()
        self._answers = 0
        self._reader = asyncio.ensure_future(self._read())
        self._sinks: list[asyncio.Future[Any]] = []
        if video:
            self.pc.addTrack(SmallVideo())
        if audio:
            self.pc.addTrack(Tone())
        if not video and not audio:
            self.pc.addTransceiver("audio", direction="recvonly")
        self.pc.on("track", self._on_track)

    async def join(self, name: str = "") -> dict[str, Any]:
        await self.send({"type": "join", "display_name": name})
        joined = await self.wait_message("joined")
        self.peer_id = joined["peer_id"]
        await self.pc.setLocalDescription(await self.pc.createOffer())
        before = self._answers
        await self.send({"type": "offer", "sdp": self.pc.localDescription.sdp})
        await self.wait_for(lambda: self._answers > before)
        return joined

    async def send(self, message: dict[str, Any] | str) -> None:
        await self.ws.send_str(message if isinstance(message, str) else json.dumps(message))

    def frames_from(self, peer_id: str, kind: str) -> int:
        return self.frames[f"{peer_id}:{kind}"]

    async def wait_frames(self, peer_id: str, kind: str, count: int = 5) -> None:
        start = self.frames_from(peer_id, kind)
        await self.wait_for(lambda: self.frames_from(peer_id, kind) >= start + count)

    async def wait_message(self, kind: str, pred: Callable[[dict[str, Any]], bool] = lambda m: True) -> dict[str, Any]:
        return await self.wait_for(
            lambda: next((m for m in reversed(self.messages) if m.get("type") == kind and pred(m)), None)
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

    async def close(self) -> None:
        for task in (self._reader, *self._sinks):
            task.cancel()
        await asyncio.gather(self._reader, *self._sinks, return_exceptions=True)
        await self.pc.close()
        if not self.ws.closed:
            await self.ws.close()

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type != WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            self.messages.append(data)
            if data["type"] == "answer":
                await self.pc.setRemoteDescription(RTCSessionDescription(data["sdp"], "answer"))
                self._answers += 1
            elif data["type"] == "offer":
                await self.pc.setRemoteDescription(RTCSessionDescription(data["sdp"], "offer"))
                await self.pc.setLocalDescription(await self.pc.createAnswer())
                await self.send({"type": "answer", "sdp": self.pc.localDescription.sdp})
            self._changed.set()
        self.messages.append({"type": "__closed__", "code": self.ws.close_code})
        self._changed.set()

    def _on_track(self, track: MediaStreamTrack) -> None:
        self._sinks.append(asyncio.ensure_future(self._consume(track)))

    async def _consume(self, track: MediaStreamTrack) -> None:
        # The remote stream id (msid) is the publisher's peer_id (see sfu/README.md).
        stream = self._stream_of(track)
        while True:
            try:
                await track.recv()
            except Exception:  # noqa: BLE001 - the track ended
                return
            self.frames[f"{stream}:{track.kind}"] += 1
            self._changed.set()

    def _stream_of(self, track: MediaStreamTrack) -> str:
        for t in self.pc.getTransceivers():
            if t.receiver.track is track:
                sdp = self.pc.remoteDescription.sdp if self.pc.remoteDescription else ""
                section = _media_section(sdp, t.mid)
                for line in section:
                    if line.startswith("a=msid:"):
                        return line.split(":", 1)[1].split()[0]
        return "?"


def _media_section(sdp: str, mid: str | None) -> list[str]:
    sections: list[list[str]] = []
    for line in sdp.splitlines():
        if line.startswith("m="):
            sections.append([])
        if sections:
            sections[-1].append(line)
    for sec in sections:
        if f"a=mid:{mid}" in sec:
            return sec
    return []
