"""What a learner's Chromium says of the mentor on a lossy link, through ``getStats()``: video
frame rate, the longest wait between two frames and Chromium's freeze counters; audio
concealment and level. Shared by ``tests/browser/test_room_loss.py`` and
``benchmarks/loss_sweep.py``; the link itself is ``benchmarks/impair.py``."""

from __future__ import annotations

import math
import struct
import time
import wave
from pathlib import Path
from typing import Any, Optional

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
      if (s.type === "inbound-rtp") window.__frameSamples.push([performance.now(), s.framesDecoded || 0, s.frameHeight || 0, s.packetsReceived || 0, s.pliCount || 0, s.framesReceived || 0]);
    });
  }, 50);
  return true;
}"""

SAMPLE_STOP_JS = """() => { clearInterval(window.__frameSampler); return window.__frameSamples; }"""

# the sending side of this page's camera: each simulcast layer's outbound-rtp, and the
# browser's own uplink estimate and round trip (the nominated candidate pair)
OUTBOUND_JS = """async () => {
  const pc = window.__room && window.__room.pc;
  if (!pc) return null;
  const report = await pc.getStats();
  const layers = {};
  let pair = null;
  report.forEach((s) => {
    if (s.type === "outbound-rtp" && s.kind === "video") {
      layers[s.rid || "-"] = {
        framesEncoded: s.framesEncoded || 0, framesSent: s.framesSent || 0,
        fps: s.framesPerSecond || 0, height: s.frameHeight || 0,
        limitation: s.qualityLimitationReason || null,
        limitationDurations: s.qualityLimitationDurations || {},
        nackCount: s.nackCount || 0, pliCount: s.pliCount || 0, firCount: s.firCount || 0,
        retransmittedPacketsSent: s.retransmittedPacketsSent || 0, packetsSent: s.packetsSent || 0,
        bytesSent: s.bytesSent || 0, keyFramesEncoded: s.keyFramesEncoded || 0,
        targetBitrate: s.targetBitrate || 0, active: s.active,
      };
    }
    if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded") pair = s;
  });
  return {
    layers,
    availableOutgoingBitrate: pair ? pair.availableOutgoingBitrate || null : null,
    rtt: pair ? pair.currentRoundTripTime || null : null,
  };
}"""

_COUNTERS = (
    "framesEncoded",
    "framesSent",
    "nackCount",
    "pliCount",
    "firCount",
    "retransmittedPacketsSent",
    "packetsSent",
    "bytesSent",
    "keyFramesEncoded",
)


def outbound_window(before: dict[str, Any], after: dict[str, Any], seconds: float) -> dict[str, Any]:
    """What the publisher's browser did between two ``OUTBOUND_JS`` snapshots: per layer the
    encoded frame rate, kbit/s, NACKs and PLIs it got and packets it resent, and why its
    quality was limited (the share of the window per reason)."""
    out: dict[str, Any] = {
        "estimate_kbps": round((after.get("availableOutgoingBitrate") or 0) / 1000),
        "rtt_ms": round(1000 * (after.get("rtt") or 0), 1),
        "layers": {},
    }
    for rid, a in sorted(after.get("layers", {}).items()):
        b = before.get("layers", {}).get(rid, {})
        d = {k: a.get(k, 0) - b.get(k, 0) for k in _COUNTERS}
        limited = {
            reason: round(a["limitationDurations"].get(reason, 0) - b.get("limitationDurations", {}).get(reason, 0), 2)
            for reason in a.get("limitationDurations", {})
        }
        out["layers"][rid] = {
            "encoded_fps": round(d["framesEncoded"] / seconds, 1),
            "kbps": round(8 * d["bytesSent"] / seconds / 1000),
            "height": a.get("height"),
            "limitation": a.get("limitation"),
            "limited_s": {k: v for k, v in limited.items() if v},
            "nacks": d["nackCount"],
            "plis": d["pliCount"] + d["firCount"],
            "resent": d["retransmittedPacketsSent"],
            "sent": d["packetsSent"],
            "keyframes": d["keyFramesEncoded"],
            "target_kbps": round(a.get("targetBitrate", 0) / 1000),
        }
    return out


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


def media_args(base: list[str], wav: Path) -> list[str]:
    """Chromium flags: ``base`` with the fake camera at 30 fps (20 unless told, under the page's
    24) and ``wav`` as the fake microphone."""
    args = [a for a in base if a != "--use-fake-device-for-media-stream"]
    return [*args, "--use-fake-device-for-media-stream=fps=30", f"--use-file-for-fake-audio-capture={wav}"]


def video_window(learner: Any, mentor_peer: str, seconds: float, publisher: Any = None) -> dict[str, Any]:
    """The learner's view of the mentor's camera over ``seconds``: frame rate, the longest
    time between two decoded frames (sampled every 50 ms), Chromium's freeze counters; with
    ``publisher`` (the mentor), what the mentor's browser sent meanwhile (``outbound_window``)."""
    sent_before = publisher.page.evaluate(OUTBOUND_JS) if publisher is not None else None
    before = learner.page.evaluate(INBOUND_JS, [mentor_peer, "camera"])
    learner.page.evaluate(SAMPLE_START_JS, [mentor_peer])
    started_at = time.time()
    start = time.monotonic()
    time.sleep(seconds)
    samples = learner.page.evaluate(SAMPLE_STOP_JS)
    elapsed = time.monotonic() - start
    after = learner.page.evaluate(INBOUND_JS, [mentor_peer, "camera"])
    sent_after = publisher.page.evaluate(OUTBOUND_JS) if publisher is not None else None
    longest = 0.0
    last_change = samples[0][0] if samples else 0.0
    # each wait over 0.3 s: when in the window, how long, the picture's height either side, and
    # what arrived meanwhile (packets, whole frames) and the keyframe requests (PLIs) it sent:
    # packets but no frames is a decoder waiting for a keyframe, no packets a stopped stream
    gaps: list[tuple[float, float, int, int, int, int, int]] = []
    since = samples[0] if samples else None
    for s0, s1 in zip(samples, samples[1:]):
        if s1[1] > s0[1]:
            wait = (s1[0] - last_change) / 1000
            longest = max(longest, wait)
            if wait > 0.3 and since is not None:
                offset = round((last_change - samples[0][0]) / 1000, 2)
                gaps.append(
                    (offset, round(wait, 2), s0[2], s1[2], s0[3] - since[3], s0[5] - since[5], s0[4] - since[4])
                )
            last_change = s1[0]
            since = s1
    return {
        "fps": round((after["framesDecoded"] - before["framesDecoded"]) / elapsed, 1),
        "longest_gap_s": round(longest, 3),
        "gaps": gaps,
        "started_at": round(started_at, 2),
        "freezes": after.get("freezeCount", 0) - before.get("freezeCount", 0),
        "freezes_s": round(after.get("totalFreezesDuration", 0) - before.get("totalFreezesDuration", 0), 3),
        "height": after.get("frameHeight"),
        "nacks": after.get("nackCount", 0) - before.get("nackCount", 0),
        "lost": after.get("packetsLost", 0) - before.get("packetsLost", 0),
        "received": after.get("packetsReceived", 0) - before.get("packetsReceived", 0),
        "plis": after.get("pliCount", 0) - before.get("pliCount", 0),
        "dropped": after.get("framesDropped", 0) - before.get("framesDropped", 0),
        "jitter_buffer_ms": _jitter_buffer_ms(before, after),
        **({"publisher": outbound_window(sent_before, sent_after, elapsed)} if sent_before and sent_after else {}),
    }


def _jitter_buffer_ms(before: dict[str, Any], after: dict[str, Any]) -> Optional[float]:
    """The mean time a frame waited in the receiver's jitter buffer over the window."""
    emitted = after.get("jitterBufferEmittedCount", 0) - before.get("jitterBufferEmittedCount", 0)
    delay = after.get("jitterBufferDelay", 0) - before.get("jitterBufferDelay", 0)
    return round(1000 * delay / emitted, 1) if emitted else None


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
