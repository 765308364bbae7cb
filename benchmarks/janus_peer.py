"""Janus (Debian's ``janus`` package) as the peer SFU of the load benchmark (issue 28).

``JanusServer`` starts ``/usr/bin/janus`` with a configuration written into a private
directory (no source build, no system service, nothing of ``/etc/janus`` read): only the
VideoRoom plugin and the plain-HTTP transport on a free loopback port, RTP on a given port
range, ICE on the interfaces the benchmark's participants use. ``JanusSession`` speaks the
Janus API over that HTTP transport: create a session, attach the VideoRoom plugin (one
handle per publisher and per subscriber, as Janus wants), create a room, publish with the
participant's own SDP offer (``joinandconfigure``), subscribe to feeds (Janus offers, the
participant answers, ``start``). Events come from the session's long poll.

The participant side (SDP offers and answers, media) is the caller's: the same participants
the benchmark drives against PeerLearn (aiortc's, or the replay generator's through
``benchmarks/janus_replay.py``), on two peer connections: ``pcs[0]`` publishes, ``pcs[1]``
subscribes.

    .venv/bin/python benchmarks/janus_peer.py --seconds 5    # smoke: 1 publisher, 1 subscriber
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Optional

import aiohttp

JANUS = "/usr/bin/janus"
LIBDIR = Path("/usr/lib/x86_64-linux-gnu/janus")


def available() -> bool:
    return Path(JANUS).exists() and (LIBDIR / "plugins" / "libjanus_videoroom.so").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class JanusError(RuntimeError):
    pass


class JanusServer:
    """One Janus process with a configuration of the benchmark's own."""

    def __init__(self, rtp_ports: Optional[tuple[int, int]] = None, interfaces: str = "") -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="pl-janus-"))
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/janus"
        self.rtp_ports = rtp_ports
        self.interfaces = interfaces
        self.proc: Optional[subprocess.Popen[bytes]] = None

    def _write_config(self) -> None:
        conf = self.dir / "conf"
        conf.mkdir()
        # libconfig syntax (.jcfg). Everything Janus would otherwise load is switched off so the
        # process does the VideoRoom's work and nothing else (CPU is what is being compared).
        plugins = [p.name for p in (LIBDIR / "plugins").glob("libjanus_*.so") if p.name != "libjanus_videoroom.so"]
        transports = [p.name for p in (LIBDIR / "transports").glob("libjanus_*.so") if p.name != "libjanus_http.so"]
        enforce = f'ice_enforce_list = "{self.interfaces}"' if self.interfaces else ""
        # ephemeral ports unless asked: other programs on a shared machine hold ranges of their own
        ports = f'rtp_port_range = "{self.rtp_ports[0]}-{self.rtp_ports[1]}"' if self.rtp_ports else ""
        (conf / "janus.jcfg").write_text(
            f"""general: {{
    configs_folder = "{conf}"
    plugins_folder = "{LIBDIR / "plugins"}"
    transports_folder = "{LIBDIR / "transports"}"
    events_folder = "{LIBDIR / "events"}"
    loggers_folder = "{LIBDIR / "loggers"}"
    debug_level = 3
    session_timeout = 120
}}
media: {{
    {ports}
}}
nat: {{
    ice_ignore_list = "vmnet"
    {enforce}
}}
plugins: {{
    disable = "{",".join(sorted(plugins))}"
}}
transports: {{
    disable = "{",".join(sorted(transports))}"
}}
events: {{
    broadcast = false
}}
loggers: {{
    disable = "libjanus_jsonlog.so"
}}
"""
        )
        (conf / "janus.transport.http.jcfg").write_text(
            f"""general: {{
    json = "compact"
    base_path = "/janus"
    http = true
    port = {self.port}
    ip = "127.0.0.1"
    https = false
}}
admin: {{
    admin_http = false
    admin_https = false
}}
"""
        )
        (conf / "janus.plugin.videoroom.jcfg").write_text("general: {\n}\n")

    async def start(self, timeout: float = 15.0) -> None:
        self._write_config()
        log = open(self.dir / "janus.log", "wb")
        self.proc = subprocess.Popen(
            [JANUS, "-F", str(self.dir / "conf"), "-o", "-N", "-L", str(self.dir / "janus.log")],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as http:
            while True:
                if self.proc.poll() is not None:
                    raise JanusError(f"janus exited ({self.proc.returncode}): {self.log_tail()}")
                try:
                    async with http.get(self.url + "/info") as r:
                        if r.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                if time.monotonic() > deadline:
                    raise JanusError(f"janus did not answer on {self.url}: {self.log_tail()}")
                await asyncio.sleep(0.1)

    def log_tail(self, n: int = 20) -> str:
        try:
            return "\n".join((self.dir / "janus.log").read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)


class JanusSession:
    """A Janus API session over the HTTP transport, with its event long poll."""

    def __init__(self, http: aiohttp.ClientSession, url: str) -> None:
        self.http = http
        self.url = url
        self.id = 0
        self._waiters: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._events: dict[int, asyncio.Queue[dict[str, Any]]] = {}
        self._up: dict[int, asyncio.Event] = {}
        self._poller: Optional[asyncio.Task[None]] = None

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        body = {"transaction": uuid.uuid4().hex, **body}
        async with self.http.post(self.url + path, json=body) as r:
            reply: dict[str, Any] = await r.json(content_type=None)
        if reply.get("janus") == "error":
            raise JanusError(json.dumps(reply["error"]))
        return reply

    async def create(self) -> None:
        self.id = int((await self._post("", {"janus": "create"}))["data"]["id"])
        self._poller = asyncio.create_task(self._poll())

    async def _poll(self) -> None:
        """Janus's HTTP long poll: events of every handle of this session (keeps it alive too)."""
        while True:
            try:
                async with self.http.get(f"{self.url}/{self.id}?maxev=10&rid={int(time.time() * 1000)}") as r:
                    batch = await r.json(content_type=None)
            except aiohttp.ClientError:
                await asyncio.sleep(0.2)
                continue
            for ev in batch if isinstance(batch, list) else [batch]:
                sender = int(ev.get("sender", 0) or 0)
                if not sender:
                    continue
                if ev.get("janus") == "webrtcup":
                    self._up.setdefault(sender, asyncio.Event()).set()
                self._events.setdefault(sender, asyncio.Queue()).put_nowait(ev)

    async def webrtc_up(self, handle: int, timeout: float = 15.0) -> None:
        """Until the handle's peer connection is up (ICE and DTLS done): a publisher's feed can be
        subscribed to only from then on ("No such feed" before)."""
        await asyncio.wait_for(self._up.setdefault(handle, asyncio.Event()).wait(), timeout)

    async def attach(self) -> int:
        """A new VideoRoom handle."""
        reply = await self._post(f"/{self.id}", {"janus": "attach", "plugin": "janus.plugin.videoroom"})
        handle = int(reply["data"]["id"])
        self._events.setdefault(handle, asyncio.Queue())
        return handle

    async def request(self, handle: int, body: dict[str, Any]) -> dict[str, Any]:
        """A synchronous VideoRoom request (create, list ...): its plugin data."""
        reply = await self._post(f"/{self.id}/{handle}", {"janus": "message", "body": body})
        data: dict[str, Any] = reply["plugindata"]["data"]
        if "error" in data:
            raise JanusError(data["error"])
        return data

    async def message(
        self, handle: int, body: dict[str, Any], jsep: Optional[dict[str, Any]] = None, timeout: float = 15.0
    ) -> dict[str, Any]:
        """An asynchronous VideoRoom request: Janus acks, then the answer comes as an event
        (with its jsep when there is one)."""
        msg: dict[str, Any] = {"janus": "message", "body": body}
        if jsep is not None:
            msg["jsep"] = jsep
        await self._post(f"/{self.id}/{handle}", msg)
        queue = self._events.setdefault(handle, asyncio.Queue())
        deadline = time.monotonic() + timeout
        while True:
            ev = await asyncio.wait_for(queue.get(), max(0.1, deadline - time.monotonic()))
            if ev.get("janus") != "event":
                continue  # webrtcup, media, slowlink ...: not the answer to this request
            data = ev.get("plugindata", {}).get("data", {})
            if "error" in data:
                raise JanusError(data["error"])
            return ev

    async def create_room(self, handle: int, room: int, publishers: int, bitrate: int = 2_000_000) -> None:
        await self.request(
            handle,
            {
                "request": "create",
                "room": room,
                "publishers": publishers,
                "videocodec": "vp8",
                "audiocodec": "opus",
                "bitrate": bitrate,
                "notify_joining": False,
            },
        )

    async def publish(self, handle: int, room: int, display: str, offer_sdp: str) -> tuple[int, str]:
        """Join ``room`` as a publisher with our complete offer (candidates in it, no trickle):
        (this publisher's feed id, Janus's answer SDP)."""
        ev = await self.message(
            handle,
            {"request": "joinandconfigure", "room": room, "ptype": "publisher", "display": display},
            {"type": "offer", "sdp": offer_sdp, "trickle": False},
        )
        data = ev["plugindata"]["data"]
        return int(data["id"]), str(ev["jsep"]["sdp"])

    async def subscribe(self, handle: int, room: int, feeds: list[int]) -> str:
        """Join ``room`` as one subscriber to ``feeds`` (every stream of each): Janus's offer."""
        ev = await self.message(
            handle,
            {"request": "join", "room": room, "ptype": "subscriber", "streams": [{"feed": f} for f in feeds]},
        )
        return str(ev["jsep"]["sdp"])

    async def start(self, handle: int, room: int, answer_sdp: str) -> None:
        await self.message(handle, {"request": "start", "room": room}, {"type": "answer", "sdp": answer_sdp})

    async def subscribe_streams(self, handle: int, room: int, feeds: list[int]) -> tuple[str, list[int]]:
        """As :meth:`subscribe`, also returning the feed of each m-line of Janus's offer."""
        ev = await self.message(
            handle,
            {"request": "join", "room": room, "ptype": "subscriber", "streams": [{"feed": f} for f in feeds]},
        )
        streams = sorted(ev["plugindata"]["data"].get("streams", []), key=lambda st: int(st.get("mindex", 0)))
        return str(ev["jsep"]["sdp"]), [int(st.get("feed_id", 0) or 0) for st in streams]

    async def destroy(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
        try:
            await self._post(f"/{self.id}", {"janus": "destroy"})
        except (aiohttp.ClientError, JanusError):
            pass


def negotiated(answer_sdp: str) -> dict[str, Any]:
    """What Janus agreed to with a publisher (for a fair comparison): extensions, TWCC, codecs."""
    lines = answer_sdp.splitlines()
    return {
        "extensions": sorted({line.split(" ", 1)[1] for line in lines if line.startswith("a=extmap:")}),
        # TWCC is in use only with its header extension (an rtcp-fb "transport-cc" alone is not)
        "twcc": any("transport-wide-cc" in line for line in lines if line.startswith("a=extmap:")),
        "codecs": sorted({line.split(" ", 1)[1].split("/")[0] for line in lines if line.startswith("a=rtpmap:")}),
        "srtp": "DTLS-SRTP (profile chosen in the DTLS handshake)",
    }


class JanusRooms:
    """The Janus side of one load run: one API session, a VideoRoom per benchmark room, and
    which participant published which feed (subscribers map Janus's m-lines back to people)."""

    def __init__(self, http: aiohttp.ClientSession, url: str) -> None:
        self.session = JanusSession(http, url)
        self.admin_handle = 0
        self.room_ids: dict[int, int] = {}
        self.feeds: dict[int, dict[int, str]] = {}  # benchmark room -> feed id -> participant key
        self.full: dict[int, asyncio.Event] = {}
        self.size: dict[int, int] = {}
        self.negotiated: Optional[dict[str, Any]] = None

    async def open(self, room: int, size: int) -> None:
        if not self.session.id:
            await self.session.create()
            self.admin_handle = await self.session.attach()
        janus_room = random.randint(1_000_000, 9_999_999)
        await self.session.create_room(self.admin_handle, janus_room, publishers=size)
        self.room_ids[room] = janus_room
        self.feeds[room] = {}
        self.full[room] = asyncio.Event()
        self.size[room] = size

    def published(self, room: int, feed: int, key: str) -> None:
        self.feeds[room][feed] = key
        if len(self.feeds[room]) >= self.size[room]:
            self.full[room].set()

    async def close(self) -> None:
        if self.session.id:
            await self.session.destroy()


async def join_janus(p: Any, rooms: JanusRooms) -> None:
    """A participant through Janus, as its VideoRoom wants it: publish on one peer connection
    (our offer, Janus answers), then, once everyone of the room publishes, subscribe to all the
    others on a second one (Janus offers, we answer). Same tracks and counting as the others."""
    from aiortc import RTCSessionDescription

    js = rooms.session
    room = rooms.room_ids[p.room]
    p.key = f"r{p.room}p{p.index}"
    p.bench.by_key[p.key] = p
    p.t_join = time.monotonic()
    pub = p.new_pc()  # the replay participant's is max-bundle (one transport it drives)
    p.pcs.append(pub)
    p.add_tracks(pub, start=random.randint(0, 200))
    await pub.setLocalDescription(await pub.createOffer())
    p.hook(pub)
    p.learn_sdp(pub.localDescription.sdp)
    handle = await js.attach()
    feed, answer = await js.publish(handle, room, p.key, pub.localDescription.sdp)
    await pub.setRemoteDescription(RTCSessionDescription(answer, "answer"))
    p.hook(pub)
    if rooms.negotiated is None:
        rooms.negotiated = negotiated(answer)
    await js.webrtc_up(handle, timeout=30)
    rooms.published(p.room, feed, p.key)
    # Subscribing waits for the whole room to publish, and the load joins a room's mentor before
    # its learners: the join itself must not wait for that (the mentor's would never return).
    p._tasks.append(asyncio.ensure_future(_subscribe(p, rooms, room)))


async def _subscribe(p: Any, rooms: JanusRooms, room: int) -> None:
    from aiortc import RTCSessionDescription

    js = rooms.session
    try:
        await asyncio.wait_for(rooms.full[p.room].wait(), 120)
    except asyncio.TimeoutError:
        p.errors.append("janus: room never full")
        return
    try:
        others = [f for f, key in rooms.feeds[p.room].items() if key != p.key]
        sub = p.new_pc()
        p.pcs.append(sub)
        if p.decode:
            p.watch_decoded(sub)
        sub_handle = await js.attach()
        offer, mline_feeds = await js.subscribe_streams(sub_handle, room, others)
        p.learn_sdp(offer, [rooms.feeds[p.room].get(f, "") for f in mline_feeds])
        await sub.setRemoteDescription(RTCSessionDescription(offer, "offer"))
        p.hook(sub)
        await sub.setLocalDescription(await sub.createAnswer())
        p.hook(sub)
        await js.start(sub_handle, room, sub.localDescription.sdp)
    except Exception as exc:  # noqa: BLE001 - reported with the run (signaling_errors), not lost in a task
        p.errors.append(f"janus subscribe: {exc!r}")


async def smoke(seconds: float) -> dict[str, Any]:
    """One aiortc publisher (generated VP8 + Opus) and one aiortc subscriber through Janus: the
    frames the subscriber decoded and what Janus negotiated. Proves the signaling end to end."""
    from aiortc import RTCPeerConnection, RTCSessionDescription
    from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack

    server = JanusServer()
    await server.start()
    pub = RTCPeerConnection()
    sub = RTCPeerConnection()
    frames = {"video": 0, "audio": 0}
    try:
        async with aiohttp.ClientSession() as http:
            js = JanusSession(http, server.url)
            await js.create()
            ph = await js.attach()
            room = random.randint(10_000, 99_999)
            await js.create_room(ph, room, publishers=2)
            pub.addTrack(VideoStreamTrack())
            pub.addTrack(AudioStreamTrack())
            await pub.setLocalDescription(await pub.createOffer())
            feed, answer = await js.publish(ph, room, "bench", pub.localDescription.sdp)
            await pub.setRemoteDescription(RTCSessionDescription(answer, "answer"))
            await js.webrtc_up(ph)

            @sub.on("track")
            def on_track(track: Any) -> None:
                async def count() -> None:
                    while True:
                        try:
                            await track.recv()
                        except Exception:  # noqa: BLE001 - the track ended with the connection
                            return
                        frames[track.kind] += 1

                asyncio.ensure_future(count())

            sh = await js.attach()
            offer = await js.subscribe(sh, room, [feed])
            await sub.setRemoteDescription(RTCSessionDescription(offer, "offer"))
            await sub.setLocalDescription(await sub.createAnswer())
            await js.start(sh, room, sub.localDescription.sdp)
            await asyncio.sleep(seconds)
            await js.destroy()
        return {"frames_received": frames, "feed": feed, "negotiated": negotiated(answer), "janus_pid": server.pid}
    finally:
        await pub.close()
        await sub.close()
        server.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=5.0)
    args = ap.parse_args()
    if not available():
        print("janus is not installed (apt-get install janus)")
        return 2
    print(json.dumps(asyncio.run(smoke(args.seconds)), indent=2))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
