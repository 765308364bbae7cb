"""Participants of a live room for the browser suite: each in its own Chromium process with
fake camera and microphone, observed through ``getStats()``.

``who_decodes`` asks one page how many frames it decoded from one publisher's track: the
room's ``tracks`` messages say on which mid that publisher's camera (or screen) arrives, and
that transceiver's receiver reports ``framesDecoded``. Summing every inbound stream would hide
exactly the bug these tests exist for (learners decoding each other but not the mentor).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from playwright.sync_api import expect

from tests.browser.conftest import PASSWORD, Api

#: the in-process live servers of this run: a failed wait adds what the SFU knows of the subscriber
SERVERS: list[Any] = []


def sfu_view(peer_id: str) -> str:
    """The SFU's side of one subscriber, from every live server in this process: each consumer's
    producer, mid, state, layer switch and rewriter counters (what tells "never sent" from "sent
    and not decoded" when a browser stops receiving a track)."""
    from api.keys import ENGINE

    async def view(app: Any) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for router in app[ENGINE].routers:
            peer = router.peers.get(peer_id)
            if peer is None:
                continue
            for c in list(peer.consumers.values()):
                producer = c.producer
                rw = c.rewriter
                switch = c.switch
                out.append(
                    {
                        "consumer": c.id,
                        "publisher": c.publisher_peer_id,
                        "source": producer.source if producer is not None else None,
                        "kind": c.kind,
                        "mid": c.mid,
                        "ready": c.ready,
                        "closed": c.closed,
                        "max_height": c.max_height,
                        "switch": None if switch is None else (switch.current, switch.target, switch.switches),
                        "layers": None if switch is None or producer is None else producer.layer_states(),
                        # each layer's SSRC and newest sequence number: whose numbering a jump came from
                        "layer_seqs": None
                        if producer is None
                        else [(producer.layer_ssrcs[i], f.last_seq) for i, f in enumerate(producer.layers)],
                        # payload types: the publisher's codecs, what the forwarders unwrap as RTX,
                        # and what the rewriter maps each to for this subscriber
                        "codecs": None
                        if producer is None
                        else [(k.payloadType, k.mimeType, k.parameters.get("apt")) for k in producer.codecs],
                        "rtx_apt": None if producer is None else dict(producer.forwarder.rtx_apt),
                        "pt_map": dict(rw.pt_map),
                        "rewriter": {
                            "ssrc": rw.ssrc,
                            "packets": rw.packets,
                            "dropped": rw.dropped,
                            "synced": rw.synced,
                            "sink": rw.sink is not None,
                            "last_seq": rw.last_seq,
                            "seq_off": rw.seq_off,
                            "retransmitted": rw.retransmitted,
                            "jumps": getattr(rw, "jumps", None),
                            "first_jump": getattr(rw, "first_jump", None),
                            "last_jump": getattr(rw, "last_jump", None),
                        },
                    }
                )
            # what left the socket toward this peer, and what libsrtp or the kernel refused
            sink = peer.transport.batch_sink
            owner = getattr(sink, "owner", None)
            out.append(
                {
                    "transport_errors": peer.transport.errors,
                    "socket": getattr(owner, "counters", None),
                    "last_refusal": getattr(owner, "last_refusal", None),
                    "deferring": getattr(owner, "deferring", None),
                }
            )
        return out

    views = []
    for server in SERVERS:
        try:
            views.append(server.run(view, timeout=10))
        except Exception as exc:  # noqa: BLE001 - a diagnostic must not hide the failure it explains
            views.append(f"(no view: {exc!r})")
    return repr(views)


MEDIA_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
    "--disable-dev-shm-usage",
]

# frames decoded from (publisher peer id, source) on this page; negative: not (yet) receiving
FRAMES_FROM = """async ([peerId, source]) => {
  const room = window.__room;
  const pc = room && room.pc;
  if (!pc || room.phase !== "live") return -1;
  const p = room.state.participants.get(peerId);
  if (!p) return -2;
  const track = p.tracks.find((t) => t.source === source && t.mid != null);
  if (!track) return -3;
  const tr = pc.getTransceivers().find((t) => t.mid === track.mid);
  if (!tr) return -4;
  const report = await tr.receiver.getStats();
  let n = 0;
  report.forEach((s) => { if (s.type === "inbound-rtp" && s.kind === "video") n = Math.max(n, s.framesDecoded || 0); });
  return n;
}"""

# the height this page decodes of a publisher's camera (0: nothing decoded yet)
HEIGHT_FROM = """async (peerId) => {
  const room = window.__room;
  const p = room.state.participants.get(peerId);
  const t = p && p.tracks.find((x) => x.source === "camera" && x.mid != null);
  const tr = t && room.pc.getTransceivers().find((x) => x.mid === t.mid);
  if (!tr) return 0;
  let h = 0;
  (await tr.receiver.getStats()).forEach((s) => { if (s.type === "inbound-rtp") h = s.frameHeight || 0; });
  return h;
}"""

# a compact picture of the page's media for failure messages
MEDIA_SUMMARY = """async () => {
  const room = window.__room;
  if (!room || !room.pc) return {phase: room && room.phase};
  const out = {phase: room.phase, peer: room.peerId, connection: room.pc.connectionState, inbound: [], outbound: []};
  (await room.pc.getStats()).forEach((s) => {
    if (s.type === "inbound-rtp") out.inbound.push({mid: s.mid, kind: s.kind, ssrc: s.ssrc, packets: s.packetsReceived, lost: s.packetsLost, nack: s.nackCount, frames: s.framesDecoded, pli: s.pliCount});
    if (s.type === "outbound-rtp") out.outbound.push({mid: s.mid, kind: s.kind, ssrc: s.ssrc, packets: s.packetsSent, frames: s.framesEncoded, pli: s.pliCount});
  });
  out.tracks = [...room.state.participants.values()].map((p) => ({peer: p.peer_id, role: p.user.role, tracks: p.tracks}));
  return out;
}"""

# the page sends video: frames encoded by its camera's sender
FRAMES_SENT = """async () => {
  const pc = window.__room && window.__room.pc;
  if (!pc) return 0;
  let n = 0;
  (await pc.getStats()).forEach((s) => { if (s.type === "outbound-rtp" && s.kind === "video") n = Math.max(n, s.framesEncoded || 0); });
  return n;
}"""


class Participant:
    """One person in the room: a browser context in their own Chromium process."""

    def __init__(self, name: str, browser: Any, base: str, account: Api, width: int = 960, height: int = 720) -> None:
        self.name = name
        self.base = base
        self.account = account
        self.context = browser.new_context(viewport={"width": width, "height": height}, base_url=base)
        self.context.grant_permissions(["camera", "microphone"], origin=base)
        self.page = self.context.new_page()
        self.page.set_default_timeout(20_000)
        self.console_errors: list[str] = []
        self.page.on("console", lambda m: self.console_errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.console_errors.append(str(e)))
        assert account.user is not None
        resp = self.context.request.post(
            base + "/api/auth/login", data={"email": account.user["email"], "password": PASSWORD}
        )
        assert resp.ok, resp.text()

    @property
    def peer_id(self) -> str:
        peer = self.page.evaluate("() => window.__room && window.__room.peerId")
        assert peer, f"{self.name} has no peer in the room"
        return str(peer)

    def enter(self, session_id: int) -> None:
        self.page.goto(f"/room/{session_id}")

    def wait_live(self, timeout: float = 30_000) -> None:
        expect(self.page.locator("#room")).to_have_attribute("data-phase", "live", timeout=timeout)
        self.page.wait_for_function("() => window.__room.peerId && window.__room.pc", timeout=timeout)

    def wait_sending(self, frames: int = 60) -> None:
        """Our camera reaches the server: the connection is up and frames go out."""
        if not poll(lambda: int(self.page.evaluate(FRAMES_SENT)) > frames, 30.0):
            raise AssertionError(f"{self.name} sends no video: {self.page.evaluate(MEDIA_SUMMARY)}")

    def frames_from(self, other: Participant, source: str = "camera") -> int:
        return int(self.page.evaluate(FRAMES_FROM, [other.peer_id, source]))

    def wait_decoding(self, other: Participant, source: str = "camera", timeout: float = 15.0) -> None:
        """We decode ``other``'s ``source``, and keep decoding (five more frames after the first).

        Polled from here with ``evaluate``, which awaits the page's promise: Playwright's
        ``wait_for_function`` does not await an async predicate, and the Promise it gets back
        is truthy, so a wait written that way passes at once whatever the page decodes."""
        first = poll(lambda: self.frames_from(other, source) > 0, timeout)
        if first:
            start = self.frames_from(other, source)
            first = poll(lambda: self.frames_from(other, source) > start + 5, timeout)
        if not first:
            raise AssertionError(
                f"{self.name} does not decode {other.name}'s {source}: "
                f"{self.name}={self.page.evaluate(MEDIA_SUMMARY)} {other.name}={other.page.evaluate(MEDIA_SUMMARY)}"
                f" the SFU's consumers of {self.name}={sfu_view(self.peer_id)}"
            )

    def close(self) -> None:
        self.context.close()


def poll(check: Callable[[], bool], timeout: float, every: float = 0.2) -> bool:
    """True as soon as ``check()`` is; False after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(every)


def everyone_decodes_everyone(people: list[Participant], timeout: float = 15.0) -> None:
    for me in people:
        for other in people:
            if other is not me:
                me.wait_decoding(other, "camera", timeout)


def class_with_learners(api_client: Api, learners: int) -> tuple[dict[str, Any], Api, list[Api]]:
    """A session of a fresh mentor starting in ~5 minutes (the room is open), booked by
    ``learners`` fresh learners."""
    mentor = api_client.signup("mentor", domains=["Programming"], skills=["Python"])
    starts = (datetime.now(timezone.utc) + timedelta(minutes=5)).replace(microsecond=0)
    s = mentor.call(
        "POST",
        "/api/sessions",
        {
            "title": f"Join orders {uuid.uuid4().hex[:6]}",
            "description": "People arrive when they arrive.",
            "curriculum": ["Hello"],
            "domain": "Programming",
            "skills": ["Python"],
            "price_cents": 1500,
            "capacity": 5,
            "starts_at": starts.isoformat(),
            "duration_min": 45,
        },
    )
    mentor.call("POST", f"/api/sessions/{s['id']}/publish")
    booked = []
    for _ in range(learners):
        learner = api_client.signup("learner", interests=["Python"])
        learner.call(
            "POST", "/api/bookings/create", {"session_id": s["id"]}, headers={"Idempotency-Key": uuid.uuid4().hex}
        )
        booked.append(learner)
    return s, mentor, booked
