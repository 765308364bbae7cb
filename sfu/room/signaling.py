"""The room signaling protocol (docs/architecture.md), transport-agnostic.

The application authenticates the WebSocket, builds a ``ParticipantInfo``
and calls ``serve_participant(router, channel, info)`` until it returns.
Messages are JSON objects with a ``type``; fields sit at the top level
(clients may also nest them under ``data``). Server messages carry their
fields at the top level *and* under ``data``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any, Optional, Protocol

from ..transport import ice
from . import sdp_guard
from . import room_messages as msg
from ..errors import InvalidStateError, SignalingError
from .participant import ParticipantInfo
from .peer import Peer
from .router import Router

__all__ = ["ParticipantInfo", "SignalingChannel", "serve_participant", "to_wire"]

logger = logging.getLogger(__name__)

CLOSE_NORMAL = 1000
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
CLOSE_REPLACED = 4000
OUTBOX_SIZE = 512


class SignalingChannel(Protocol):
    """What the SFU needs of a WebSocket."""

    async def send_json(self, obj: Any) -> None: ...

    async def receive_text(self) -> Optional[str]:
        """The next text message, or None once the connection is closed."""
        ...

    async def close(self, code: int, reason: str) -> None: ...


def server_message(message: dict[str, Any]) -> dict[str, Any]:
    """Fields at the top level, mirrored under ``data``."""
    fields = {k: v for k, v in message.items() if k != "type"}
    return {**message, "data": fields}


def to_wire(message: msg.RoomMessage) -> dict[str, Any]:
    """The engine's typed message as the JSON object docs/architecture.md documents."""
    body: dict[str, Any]
    match message:
        case msg.Offer(sdp=sdp):
            body = {"type": "offer", "sdp": sdp}
        case msg.Answer(sdp=sdp):
            body = {"type": "answer", "sdp": sdp}
        case msg.Joined(peer_id=peer_id, participants=participants, recording=recording):
            body = {"type": "joined", "peer_id": peer_id, "participants": participants, "recording": recording}
        case msg.PeerError(code=code, message=text):
            body = {"type": "error", "code": code, "message": text}
        case msg.ParticipantJoined(peer_id=peer_id, user=user):
            body = {"type": "participant-joined", "peer_id": peer_id, "user": user}
        case msg.ParticipantLeft(peer_id=peer_id, user=user):
            body = {"type": "participant-left", "peer_id": peer_id, "user": user}
        case msg.Tracks(peer_id=peer_id, tracks=tracks):
            body = {"type": "tracks", "peer_id": peer_id, "tracks": tracks}
        case msg.ActiveSpeaker(peer_id=peer_id):
            body = {"type": "active-speaker", "peer_id": peer_id}
        case msg.Chat(from_peer=from_peer, user=user, text=text, at=at):
            body = {"type": "chat", "from": from_peer, "user": user, "text": text, "at": at}
        case msg.Recording(on=on):
            body = {"type": "recording", "on": on}
        case msg.SessionEnded():
            body = {"type": "session-ended"}
        case msg.Quality(peer_id=peer_id, quality=quality, loss=loss, rtt_ms=rtt_ms):
            body = {
                "type": "quality",
                "peer_id": peer_id,
                "quality": quality,
                "loss": round(loss, 4),
                "rtt_ms": None if rtt_ms is None else round(rtt_ms, 1),
            }
        case msg.PlayoutDelay(peer_id=peer_id, source=source, delay_ms=delay_ms):
            body = {"type": "playout-delay", "peer_id": peer_id, "source": source, "delay_ms": delay_ms}
        case msg.PublishLayers(track_id=track_id, mid=mid, source=source, layers=layers):
            body = {"type": "publish-layers", "track_id": track_id, "mid": mid, "source": source, "layers": layers}
        case _:
            raise TypeError(f"not a room message: {message!r}")
    return server_message(body)


async def serve_participant(router: Router, channel: SignalingChannel, participant: ParticipantInfo) -> None:
    """Run one participant's signaling until they leave or the channel closes."""
    await ParticipantSession(router, channel, participant).run()


class ParticipantSession:
    """One signaling connection: limits, dispatch, the outbox."""

    def __init__(self, router: Router, channel: SignalingChannel, participant: ParticipantInfo) -> None:
        self.router = router
        self.channel = channel
        self.info = participant
        self.config = router.config
        self.peer: Optional[Peer] = None
        self.closed = False
        self._outbox: asyncio.Queue[Optional[dict[str, Any]]] = asyncio.Queue(OUTBOX_SIZE)
        self._writer_exited = asyncio.Event()
        self._writer = asyncio.ensure_future(self._run_writer())
        self._window_start = 0.0
        self._window_count = 0
        self._violations = 0
        self._leave_reason = "disconnected"

    def notify(self, message: msg.RoomMessage) -> None:
        """Queue a message for the client (never blocks the room)."""
        if self.closed:
            return
        try:
            self._outbox.put_nowait(to_wire(message))
        except asyncio.QueueFull:
            logger.warning("participant %s: outbox full, closing", self.info.user_key)
            asyncio.ensure_future(self._close(CLOSE_POLICY, "too slow"))

    async def run(self) -> None:
        watcher: Optional[asyncio.Future[Any]] = None
        try:
            while not self.closed:
                receive = asyncio.ensure_future(self.channel.receive_text())
                waits: set[asyncio.Future[Any]] = {receive}
                if self.peer is not None:
                    if watcher is None:
                        watcher = asyncio.ensure_future(self.peer.closed_event.wait())
                    waits.add(watcher)
                done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                if receive not in done:
                    receive.cancel()
                    await self._on_peer_closed()
                    break
                text = receive.result()
                if text is None:
                    break
                if not await self._admit(text):
                    continue
                if not await self._handle(text):
                    break
        except (ConnectionError, asyncio.CancelledError):
            pass
        except Exception:
            logger.exception("participant %s: signaling failed", self.info.user_key)
        finally:
            if watcher is not None:
                watcher.cancel()
            if self.peer is not None:
                await self.router.leave(self.peer, self._leave_reason)
            await self._close(CLOSE_NORMAL, "bye")

    # ------------------------------------------------------------ private

    async def _admit(self, text: Any) -> bool:
        if not isinstance(text, str):
            self.notify(msg.PeerError("invalid_message", "text frames only"))
            return False
        limit = self.config.max_message_bytes
        if len(text) > limit or len(text.encode("utf-8", "surrogatepass")) > limit:
            await self._close(CLOSE_TOO_BIG, "message too big")
            return False
        now = time.monotonic()
        if now - self._window_start >= 1.0:
            if self._window_count <= self.config.max_messages_per_second:
                self._violations = 0
            self._window_start = now
            self._window_count = 0
        self._window_count += 1
        limit = self.config.max_messages_per_second
        if self._window_count > limit:
            # over the limit: dropped (throttled); a flood within one second
            # or several throttled seconds in a row close the connection
            if self._window_count == limit + 1:
                self._violations += 1
                self.notify(msg.PeerError("rate_limited", "too many messages"))
            if self._violations >= self.config.max_rate_violations or self._window_count > 4 * limit:
                await self._close(CLOSE_POLICY, "too many messages")
            return False
        return True

    async def _handle(self, text: str) -> bool:
        """Dispatch one message; False ends the session."""
        try:
            message = json.loads(text)
        except (ValueError, RecursionError):
            self.notify(msg.PeerError("invalid_json", "messages are JSON objects"))
            return True
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            self.notify(msg.PeerError("invalid_message", "a JSON object with a type"))
            return True
        kind = message["type"]
        nested = message.get("data")
        data: dict[str, Any] = nested if isinstance(nested, dict) else message
        try:
            if kind == "leave":
                self._leave_reason = "left"
                return False
            if kind == "join":
                await self._on_join(data)
            elif self.peer is None:
                raise SignalingError("not_joined", "send join first")
            elif kind == "offer":
                await self._on_offer(data)
            elif kind == "answer":
                await self._on_answer(data)
            elif kind == "mute":
                self._on_mute(data)
            elif kind == "chat":
                self._on_chat(data)
            elif kind == "video-size":
                self._on_video_size(data)
            elif kind == "ready":
                ready = data.get("ready")
                if not isinstance(ready, bool):
                    raise SignalingError("invalid_message", "ready must be a boolean")
                self.router.set_ready(self.peer, ready)
            else:
                raise SignalingError("unknown_type", "unknown message type")
        except SignalingError as exc:
            self.notify(msg.PeerError(exc.code, exc.message))
        except InvalidStateError as exc:
            self.notify(msg.PeerError("invalid_state", str(exc) or "invalid state"))
        except Exception:
            # nothing a client sends may take the room down
            logger.exception("participant %s: %s failed", self.info.user_key, kind)
            self.notify(msg.PeerError("internal_error", f"{kind} failed"))
        return not self.closed

    async def _on_join(self, data: dict[str, Any]) -> None:
        if self.peer is not None:
            raise SignalingError("already_joined", "already joined")
        # ``display_name`` stays accepted for old clients but is ignored: the name others
        # see is the one the application vouched for in ParticipantInfo, never the
        # client's say-so (anyone could appear as "Marie Curie (Mentor)").
        self.peer = await self.router.join(self.info, self.notify)
        participants = [p.describe() for p in self.router.peers.values() if p is not self.peer]
        self.notify(msg.Joined(self.peer.id, participants, self.router.recording))

    async def _on_offer(self, data: dict[str, Any]) -> None:
        assert self.peer is not None
        c = self.config
        sdp = sdp_guard.check_sdp(
            data.get("sdp"),
            kind="offer",
            max_bytes=c.max_sdp_bytes,
            max_m_lines=c.max_m_lines,
            max_sending=c.max_producers_per_peer,
        )
        sdp = ice.filter_remote_candidates(sdp, allow_private=c.allow_private_candidates)
        sources_raw = data.get("sources") or {}
        if not isinstance(sources_raw, dict) or len(sources_raw) > 16:
            raise SignalingError("invalid_message", "sources maps track ids or mids to a source")
        sources = {}
        for key, value in sources_raw.items():
            if not isinstance(key, str) or value not in ("camera", "mic", "screen"):
                raise SignalingError("invalid_message", "sources values are camera, mic or screen")
            sources[key] = value
        answer = await self.router.publish(self.peer, sdp, sources)
        self.notify(msg.Answer(answer))
        self.peer.answered()

    async def _on_answer(self, data: dict[str, Any]) -> None:
        assert self.peer is not None
        c = self.config
        sdp = sdp_guard.check_sdp(
            data.get("sdp"), kind="answer", max_bytes=c.max_sdp_bytes, max_m_lines=c.max_m_lines * 8
        )
        sdp = ice.filter_remote_candidates(sdp, allow_private=c.allow_private_candidates)
        await self.peer.handle_answer(sdp)

    def _on_mute(self, data: dict[str, Any]) -> None:
        assert self.peer is not None
        kind = data.get("kind")
        muted = data.get("muted")
        if kind not in ("audio", "video", "camera", "mic", "screen") or not isinstance(muted, bool):
            raise SignalingError("invalid_message", "mute needs kind (audio|video|screen) and muted (bool)")
        self.router.set_muted(self.peer, kind, muted)

    def _on_video_size(self, data: dict[str, Any]) -> None:
        assert self.peer is not None
        track_id, height = data.get("track_id"), data.get("height")
        if not isinstance(track_id, str) or not (
            height is None or (isinstance(height, int) and not isinstance(height, bool) and 0 <= height <= 10_000)
        ):
            raise SignalingError("invalid_message", "video-size needs track_id and height (0-10000 or null)")
        if not self.router.set_video_size(self.peer, track_id, height):
            raise SignalingError("unknown_track", "no such track reaches you")

    def _on_chat(self, data: dict[str, Any]) -> None:
        assert self.peer is not None
        text = data.get("text")
        if not isinstance(text, str) or not text.strip() or len(text) > self.config.max_chat_chars:
            raise SignalingError("invalid_message", f"chat text must be 1-{self.config.max_chat_chars} characters")
        self.router.chat(self.peer, text)

    async def _on_peer_closed(self) -> None:
        peer = self.peer
        if peer is not None and peer.close_reason == "replaced":
            self.peer = None  # the router already moved on
            await self._close(CLOSE_REPLACED, "replaced by a newer connection")
        elif peer is not None and self.router.peers.get(peer.id) is not peer:
            self.peer = None
            await self._close(CLOSE_NORMAL, "session ended" if peer.close_reason == "ended" else "closed")

    async def _close(self, code: int, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        # flush what is queued (session-ended, errors), then close
        await self._outbox.put(None)
        await self._writer_exited.wait()
        try:
            await self.channel.close(code, reason)
        except Exception:
            pass

    async def _run_writer(self) -> None:
        try:
            while True:
                message = await self._outbox.get()
                if message is None:
                    break
                await self.channel.send_json(message)
        except (ConnectionError, asyncio.CancelledError):
            pass
        except Exception:
            logger.exception("participant %s: send failed", self.info.user_key)
        finally:
            self._writer_exited.set()
