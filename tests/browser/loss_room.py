"""A live server whose media path runs through the user-space impairment relay
(``benchmarks/impair.py``), and the ``getStats()`` reads the loss tests and the loss sweep
benchmark take of a learner receiving the mentor: video frame rate and freezes, audio
concealment. Each participant is its own Chromium process (``room_participants``)."""

from __future__ import annotations

import math
import socket
import struct
import time
import wave
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from api.settings import Settings
from benchmarks.impair import RelayThread
from tests.browser.conftest import LiveServer
from tests.browser.room_participants import MEDIA_ARGS

# the page's own ICE username fragment: how the relay tells this participant's packets apart
UFRAG_JS = """() => {
  const d = window.__room && window.__room.pc && window.__room.pc.localDescription;
  const m = d && d.sdp.match(/a=ice-ufrag:(\\S+)/);
  return m ? m[1] : null;
}"""

# the receiver of (publisher, source) on this page: its inbound-rtp stats and codec
INBOUND_JS = """async ([peerId, source]) => {
  const room = window.__room;
  const pc = room && room.pc;
  const p = pc && room.state.participants.get(peerId);
  const track = p && p.tracks.find((t) => t.source === source && t.mid != null);
  const tr = track && pc.getTransceivers().find((t) => t.mid === track.mid);
  if (!tr) return null;
  const report = await tr.receiver.getStats();
  let out = null;
  report.forEach((s) => {
    if (s.type === "inbound-rtp") {
      out = Object.assign({}, s);
      const codec = s.codecId && report.get(s.codecId);
      out.codec = codec ? codec.mimeType : null;
    }
  });
  return out;
}"""

# start sampling framesDecoded of (publisher, camera) every 50 ms in the page
SAMPLE_START_JS = """([peerId]) => {
  const room = window.__room;
  const p = room.state.participants.get(peerId);
  const track = p.tracks.find((t) => t.source === "camera" && t.mid != null);
  const tr = room.pc.getTransceivers().find((t) => t.mid === track.mid);
  window.__frameSamples = [];
  clearInterval(window.__frameSampler);
  window.__frameSampler = setInterval(async () => {
    const report = await tr.receiver.getStats();
    report.forEach((s) => {
      if (s.type === "inbound-rtp") window.__frameSamples.push([performance.now(), s.framesDecoded || 0]);
    });
  }, 50);
  return true;
}"""

SAMPLE_STOP_JS = """() => { clearInterval(window.__frameSampler); return window.__frameSamples; }"""


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def relayed_server(data_dir: Path, *, red: bool) -> Iterator[tuple[LiveServer, RelayThread]]:
    """The platform with its SFU on one UDP port behind an impairment relay (clean until told)."""
    sfu_port = free_udp_port()
    relay = RelayThread(("127.0.0.1", sfu_port))
    port = free_tcp_port()
    settings = Settings(
        data_dir=data_dir,
        host="127.0.0.1",
        port=port,
        public_url=f"http://127.0.0.1:{port}",
        scheduler_enabled=False,
        auth_rate_limit=100_000,
        access_log=False,
        rtc_port_min=sfu_port,
        rtc_port_max=sfu_port,
        rtc_interfaces="127.0.0.1",
        rtc_announced_port=relay.port,
        # the SFU never checks a browser's own addresses: every packet goes through the relay
        rtc_private_candidates="deny",
        rtc_audio_red=red,
    ).prepared()
    server = LiveServer(settings)
    server.start()
    try:
        yield server, relay
    finally:
        server.stop()
        relay.close()


def speech_like_wav(path: Path, seconds: float = 10.0, rate: int = 48000) -> Path:
    """A voiced, never silent signal (150 Hz harmonics, syllable-rate loudness) for Chromium's
    fake microphone: DTX stays off, so every 20 ms carries a frame a loss can hit."""
    frames = bytearray()
    for n in range(int(seconds * rate)):
        t = n / rate
        envelope = 0.55 + 0.45 * math.sin(2 * math.pi * 4 * t)
        x = sum(math.sin(2 * math.pi * 150 * k * t) / k for k in range(1, 8))
        frames += struct.pack("<h", int(6000 * envelope * x / 2.6))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(bytes(frames))
    return path


def media_args(wav: Path) -> list[str]:
    # Chromium's fake camera runs at 20 fps unless told: 30, so the page's 24 fps is what is sent
    args = [a for a in MEDIA_ARGS if a != "--use-fake-device-for-media-stream"]
    return [*args, "--use-fake-device-for-media-stream=fps=30", f"--use-file-for-fake-audio-capture={wav}"]


def video_window(learner: Any, mentor_peer: str, seconds: float) -> dict[str, Any]:
    """The learner's view of the mentor's camera over ``seconds``: frame rate, the longest
    time between two decoded frames (sampled every 50 ms), Chromium's freeze counters."""
    before = learner.page.evaluate(INBOUND_JS, [mentor_peer, "camera"])
    learner.page.evaluate(SAMPLE_START_JS, [mentor_peer])
    start = time.monotonic()
    time.sleep(seconds)
    samples = learner.page.evaluate(SAMPLE_STOP_JS)
    elapsed = time.monotonic() - start
    after = learner.page.evaluate(INBOUND_JS, [mentor_peer, "camera"])
    longest = 0.0
    last_change = samples[0][0] if samples else 0.0
    for (t0, f0), (t1, f1) in zip(samples, samples[1:]):
        if f1 > f0:
            longest = max(longest, (t1 - last_change) / 1000)
            last_change = t1
    return {
        "fps": round((after["framesDecoded"] - before["framesDecoded"]) / elapsed, 1),
        "longest_gap_s": round(longest, 3),
        "freezes": after.get("freezeCount", 0) - before.get("freezeCount", 0),
        "freezes_s": round(after.get("totalFreezesDuration", 0) - before.get("totalFreezesDuration", 0), 3),
        "height": after.get("frameHeight"),
        "nacks": after.get("nackCount", 0) - before.get("nackCount", 0),
        "lost": after.get("packetsLost", 0) - before.get("packetsLost", 0),
        "received": after.get("packetsReceived", 0) - before.get("packetsReceived", 0),
    }


def audio_window(learner: Any, mentor_peer: str, seconds: float) -> dict[str, Any]:
    """The learner's playout of the mentor's microphone over ``seconds``: the share of samples
    the decoder had to conceal (made up for lost packets), and how loud it played."""
    before = learner.page.evaluate(INBOUND_JS, [mentor_peer, "mic"])
    energy_before = before.get("totalAudioEnergy", 0.0)
    levels = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(1.0)
        levels.append(learner.page.evaluate(INBOUND_JS, [mentor_peer, "mic"]).get("audioLevel", 0.0))
    after = learner.page.evaluate(INBOUND_JS, [mentor_peer, "mic"])

    def d(key: str) -> float:
        return float(after.get(key, 0) or 0) - float(before.get(key, 0) or 0)

    samples = d("totalSamplesReceived")
    duration = d("totalSamplesDuration")
    return {
        "codec": after.get("codec"),
        "samples": int(samples),
        "concealed_pct": round(100 * d("concealedSamples") / samples, 2) if samples else None,
        "concealed_not_silent_pct": round(100 * (d("concealedSamples") - d("silentConcealedSamples")) / samples, 2)
        if samples
        else None,
        "concealment_events": int(d("concealmentEvents")),
        "lost": int(d("packetsLost")),
        "received": int(d("packetsReceived")),
        "fec_packets": int(d("fecPacketsReceived")),
        "min_level": round(min(levels), 4) if levels else None,
        "rms_level": round(math.sqrt((after.get("totalAudioEnergy", 0.0) - energy_before) / duration), 4)
        if duration
        else None,
    }


def count_audio_payload_types(server: LiveServer, session_id: int) -> dict[str, Any]:
    """Start counting the payload types of the audio the SFU receives in a room (its RTP tap);
    returns the live dict {"pts": {pt: packets}, "red": {producer RED pt, or None}}."""
    from api.keys import ENGINE

    out: dict[str, Any] = {"pts": {}, "red": set()}

    async def install(app: Any) -> None:
        router = app[ENGINE].get_router(str(session_id))
        assert router is not None

        def tap(producer_id: str, kind: str, data: bytes) -> None:
            if kind == "audio" and len(data) > 1:
                pt = data[1] & 0x7F
                out["pts"][pt] = out["pts"].get(pt, 0) + 1

        router.observer.add_rtp_tap(tap)
        out["red"] = {p.red_pt for p in router.producers if p.kind == "audio"}

    server.run(install)
    return out
