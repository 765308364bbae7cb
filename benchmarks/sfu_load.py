"""SFU load test: synthetic participants in real rooms, measured from outside.

Each participant joins the way a real client does: REST login, a room token
(``POST /api/rooms/{id}/token``), the documented signaling on
``/ws/room/{id}?token=``, ICE and DTLS through aiortc; it publishes VP8
(640x480@30, ~600 kbps by default) and Opus that were encoded ONCE and are
replayed, and receives everyone else. Two load generators:

- ``--generator replay`` (default, ``benchmarks/rtp_replay.py``): after the DTLS
  handshake the media bypasses aiortc: pre-packetized RTP is SRTP-protected in C
  and sent with ``sendmmsg`` on the SFU's own ``MediaSocket``; subscribers count
  SRTP per SSRC from the clear header on ``recvmmsg`` batches and decrypt 1
  video packet in ``--latency-sample`` (latency, authenticity, payload equal to
  what was sent). Several times cheaper per packet than the server.
- ``--generator aiortc`` (``benchmarks/aiortc_participants.py``): aiortc's own
  sender packetizes and protects, SRTP counted below aiortc's receiver, one
  subscriber decodes everything. About as expensive as the server: it cannot
  saturate it, kept for comparison (and used for the baseline relay).

Measured per room count, after a warm-up, over ``--duration`` seconds:
- SFU process CPU from ``/proc/<pid>/stat`` (utime+stime, all threads; all
  worker processes with ``--workers``) and the engine's forwarded-packet
  counter (``peerlearn_sfu_packets_forwarded_total`` on ``/metrics``):
  **CPU µs per forwarded packet**, forwarded packets/s and per server core;
- per-stream received bitrate, loss (sequence gaps), NACK/PLI, join -> first
  frame, and the latency the SFU path adds (send time of the packet's frame to
  its arrival at a subscriber: loopback, same clock, sender SRTP + SFU +
  receiver batch);
- the generator's own cost, so a starved generator is never mistaken for a slow
  server: its CPU per packet sent + received, how late its frames left, frames
  it had to skip, its event-loop lag, kernel drops on its sockets.

``--sweep``: the capacity curve. One server; 5-person rooms are added step by
step (1, then ``--sweep-step`` more each time) and every step is measured,
until loss at subscribers exceeds 0.5 %% or SFU-added latency p99 exceeds 10 ms
(the server's limit) or the generator saturates (then the report says so and
blames nobody). Once per ``--sweep-workers`` entry (1 vs 2 server processes).

``--peer janus``: each room count again through Janus (``benchmarks/janus_peer.py``: Debian's
package, started here with its own configuration), right after ours, with the same participants;
the report adds the peer's run and ``ratio_peer_over_ours`` of CPU per forwarded packet.

``--baseline``: the same participants (aiortc generator) through aiortc's
MediaRelay with re-encoding (decode once per publisher, encode once per
subscriber, as aiortc's examples do), so every report carries our ratio
against it from the same run.

    .venv/bin/python benchmarks/sfu_load.py --rooms 1,5,10 --participants 5 --duration 20
    .venv/bin/python benchmarks/sfu_load.py --sweep --sweep-workers 1,2 --duration 10
    .venv/bin/python benchmarks/sfu_load.py --rooms 4 --generator aiortc          # the old generator
    .venv/bin/python benchmarks/sfu_load.py --rooms 4 --workers 2        # 1 vs 2 processes
    .venv/bin/python benchmarks/sfu_load.py --url http://host:8080 --server-pid 1234 --rooms 2
    .venv/bin/python benchmarks/sfu_load.py --rooms 1 --generator aiortc --peer janus   # + Janus, same rooms
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Optional

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks import common  # noqa: E402
from benchmarks.common import command_line, machine, percentiles, progress, write_report  # noqa: E402
from benchmarks.aiortc_participants import (  # noqa: E402
    CLIENT_RCVBUF,
    Bench,
    Participant,
    join_baseline,
    join_ours,
)
from benchmarks.procstats import (  # noqa: E402
    drops_between,
    pin,
    pinning,
    proc_cpu,
    runqueue_wait,
    udp_drops,
)
from benchmarks.room_api import api_json, make_rooms, metric_urls, scrape_forwarded  # noqa: E402
from benchmarks.sfu_servers import BaselineServer, BenchServer  # noqa: E402

__all__ = ["BenchServer", "proc_cpu", "run_size", "scrape_forwarded"]  # sfu_soak.py uses these

SAMPLE_MASK = 7  # subscribers decrypt 1 packet in SAMPLE_MASK + 1 (latency samples); --latency-sample
#: replay: subscribers read once per tick decrypt 1 video packet in this many (validity only)
UNTIMED_SAMPLE = 256

#: the capacity criteria (issue 16)
MAX_LOSS_PCT = 0.5
MAX_LATENCY_P99_MS = 10.0
#: the generator is saturated when it uses this share of the cores it may use, or any of these is exceeded
GENERATOR_CPU_SHARE = 0.85
GENERATOR_SEND_LAG_P99_MS = 20.0
GENERATOR_LOOP_LAG_P99_MS = 20.0
#: share of the window the generator may wait for a CPU before its lag is put down to the machine
GENERATOR_WAIT_SHARE = 0.2


# ---------------------------------------------------------------- the participants of a run


class Load:
    """The participants of one run against one server: rooms joined step by step, measured in windows."""

    def __init__(
        self,
        *,
        mode: str,
        generator: str,
        base: str,
        participants: int,
        clips: dict[str, Any],
        http: aiohttp.ClientSession,
        run_id: str,
        audio_level: bool = True,
        sockets: int = 0,
        timed: int = 1,
    ) -> None:
        if generator not in ("replay", "aiortc"):
            raise TypeError(f"unknown generator {generator!r}")
        if mode in ("baseline", "janus") and generator != "aiortc":
            # their participants publish and subscribe on two peer connections; the replay
            # participant drives exactly one (benchmarks/replay_participant.py)
            raise TypeError(f"the {mode} runs use the aiortc generator")
        self.mode = mode
        self.generator = generator
        self.base = base
        self.participants = participants
        self.http = http
        self.run_id = run_id
        self.bench = Bench(clips, SAMPLE_MASK)
        self.replayer: Any = None
        #: the replay generator's shared sockets (0: one per participant)
        self.sockets = sockets
        #: replay, a socket each: learners per room read on arrival (the latency samples)
        self.timed = timed
        self.muxes: list[Any] = []
        self._made = 0
        if generator == "replay":
            from benchmarks.rtp_replay import Replayer

            self.replayer = Replayer(clips, audio_level=audio_level)
        self.people: list[Participant] = []
        self.setup: list[dict[str, Any]] = []
        self.join_failures: list[str] = []
        self.janus: Any = None  # benchmarks.janus_peer.JanusRooms, mode "janus"

    @property
    def rooms(self) -> int:
        return len({p.room for p in self.people})

    async def add_rooms(self, count: int, *, ramp: float, warmup: float, label: str) -> None:
        """Open ``count`` more rooms and join their participants (mentors first), then wait until
        every subscriber receives every remote video, or the warm-up, whichever is later."""
        first = self.rooms
        if self.mode == "ours":
            self.setup += await make_rooms(
                self.http, self.base, count, self.participants, f"{self.run_id}s{first}", first_index=first
            )
        elif self.mode == "janus":
            from benchmarks.janus_peer import JanusRooms

            self.janus = self.janus or JanusRooms(self.http, self.base)
            for r in range(first, first + count):
                await self.janus.open(r, self.participants)
        new = [self._participant(first + r, i) for r in range(count) for i in range(self.participants)]
        self.people += new
        self.bench.participants = self.people
        step = ramp / max(len(new) - 1, 1)
        t_start = time.monotonic()
        tasks = []
        # the mentor opens each room (learners get 409 room_not_open before that), then the learners join
        order = [p for p in new if p.index == 0] + [p for p in new if p.index != 0]
        for n, p in enumerate(order):
            if self.mode == "ours":
                room = self.setup[p.room]
                coro = join_ours(p, self.http, self.base, room["session_id"], room["tokens"][p.index])
            elif self.mode == "janus":
                from benchmarks.janus_peer import join_janus

                coro = join_janus(p, self.janus)
            else:
                coro = join_baseline(p, self.http, self.base, self.participants)
            tasks.append(asyncio.ensure_future(coro))
            progress(n + 1, len(new), f"{label}: joining {n + 1}/{len(new)}")
            if n + 1 == count:
                await asyncio.gather(*tasks, return_exceptions=True)
            await asyncio.sleep(step)
        results = await asyncio.gather(*tasks, return_exceptions=True)
        self.join_failures += [repr(r) for r in results if isinstance(r, BaseException)]
        total = len(self.people) * (self.participants - 1)
        deadline = time.monotonic() + max(warmup, 10)
        while time.monotonic() < deadline:
            got = sum(1 for p in self.people for s in p.streams.values() if s.kind == "video" and s.packets)
            progress(got, total, f"{label}: {got}/{total} video streams flowing")
            if got >= total and time.monotonic() - t_start > ramp + warmup:
                break
            await asyncio.sleep(0.5)
        progress(1, 1)
        # what the joins built (aiortc's objects, histories, clips) lives until the end: a full
        # collection walking it stalled the replay tick by tens of ms at 36 rooms (loop lag), so
        # it leaves the collector's generations
        gc.collect()
        gc.freeze()

    def _participant(self, room: int, index: int) -> Participant:
        if self.replayer is not None:
            from benchmarks.replay_participant import ReplayParticipant, default_address, open_mux

            n = self._made
            self._made += 1
            # with a socket each, the first ``timed`` learners of a room time their samples (latency:
            # kernel arrival stamps, or read on arrival without the C counter), the others check
            # validity only (sampled 1 in UNTIMED_SAMPLE); all are read once per tick
            timed = self.sockets > 0 or 1 <= index <= self.timed
            if self.sockets <= 0 or len(self.muxes) < self.sockets:
                self.muxes.append(
                    open_mux(
                        asyncio.get_running_loop(),
                        default_address(),
                        self.bench.sample_mask if timed else UNTIMED_SAMPLE - 1,
                        shared=self.sockets > 0,
                        poll=self.replayer.poll,
                        timed=timed,
                    )
                )
            mux = self.muxes[-1] if self.sockets <= 0 else self.muxes[n % self.sockets]
            return ReplayParticipant(self.bench, self.replayer, mux, room, index, timed=timed)
        # one subscriber of the first room decodes everything (proof the media is valid)
        return Participant(self.bench, room, index, decode=(room == 0 and index == 1))

    async def measure(
        self, *, duration: float, pids: list[int], urls: list[str], fps: int, label: str, generator_cores: float
    ) -> dict[str, Any]:
        """One window of ``duration`` seconds: the server's cost, what subscribers got, the generator's cost."""
        bench, people, http, replayer = self.bench, self.people, self.http, self.replayer
        lag: list[float] = []

        async def lag_probe() -> None:
            while True:
                t = time.perf_counter()
                await asyncio.sleep(0.05)
                lag.append((time.perf_counter() - t - 0.05) * 1000)

        bench.latency_ms.clear()
        bench.ingress_ms.clear()
        if replayer is not None:
            replayer.lag_ms.clear()
            replayer.tick_ms.clear()
        prober = asyncio.ensure_future(lag_probe())
        snap0 = {(id(p), s.ssrc): s.snapshot() for p in people for s in p.streams.values()}
        fwd0 = await scrape_forwarded(http, urls) if urls else {}
        gen_counters0 = self._generator_counters()
        sent0 = sum(p.packets_sent for p in people) if replayer is None else 0
        cpu0 = sum(proc_cpu(pid) for pid in pids)
        gen0 = sum(os.times()[:2])
        gen_user0 = os.times()[0]
        drops0 = (udp_drops(pids), udp_drops([os.getpid()]))
        wait0 = (runqueue_wait(pids), runqueue_wait([os.getpid()]))
        t0 = time.monotonic()
        bench.measuring = True
        if replayer is not None:
            replayer.measuring = True
        while (now := time.monotonic()) < t0 + duration:
            progress(now - t0, duration, f"{label}: measuring, {len(bench.latency_ms)} latency samples")
            await asyncio.sleep(0.5)
        bench.measuring = False
        if replayer is not None:
            replayer.measuring = False
        t1 = time.monotonic()
        cpu1 = sum(proc_cpu(pid) for pid in pids)
        gen1 = sum(os.times()[:2])
        gen_user1 = os.times()[0]
        drops1 = (udp_drops(pids), udp_drops([os.getpid()]))
        wait1 = (runqueue_wait(pids), runqueue_wait([os.getpid()]))
        gen_counters1 = self._generator_counters()
        sent1 = sum(p.packets_sent for p in people) if replayer is None else 0
        fwd1 = await scrape_forwarded(http, urls) if urls else {}
        snap1 = {(id(p), s.ssrc): s.snapshot() for p in people for s in p.streams.values()}
        progress(1, 1)
        prober.cancel()
        elapsed = t1 - t0
        kinds = {(id(p), s.ssrc): s.kind for p in people for s in p.streams.values()}

        # ---- per stream, over the window
        per_stream: dict[str, list[float]] = {"video_kbps": [], "audio_kbps": [], "loss_pct": []}
        received = expected_pkts = frames = 0
        for key, (pk1, oc1, hi1, fr1) in snap1.items():
            pk0, oc0, hi0, fr0 = snap0.get(key, (0, 0, -1, 0))
            frames += fr1 - fr0
            per_stream[f"{kinds[key]}_kbps"].append((oc1 - oc0) * 8 / elapsed / 1000)
            got = pk1 - pk0
            exp = hi1 - hi0 if hi0 >= 0 else got
            received += got
            expected_pkts += max(exp, got)
            if exp > 0:
                per_stream["loss_pct"].append(max(0.0, (exp - got) / exp * 100))
        first_frame = []
        missing_video = 0
        for p in people:
            for pub in people:
                if pub is p or pub.room != p.room:
                    continue
                st = next((s for s in p.streams.values() if s.kind == "video" and s.publisher == pub.key), None)
                if st is None or st.first_frame is None or pub.t_first_video_sent is None:
                    missing_video += 1
                    continue
                first_frame.append((st.first_frame - max(p.t_join, pub.t_first_video_sent)) * 1000)
        decoder = next((p for p in people if p.decode), None)
        total = len(people)
        expected = self.participants - 1
        streams_flowing = sum(1 for v in snap1.values() if v[0])
        forwarded = (fwd1.get("packets_forwarded_total", 0) - fwd0.get("packets_forwarded_total", 0)) if urls else 0
        egress = forwarded if forwarded > 0 else received  # baseline: what the clients received
        cpu = cpu1 - cpu0
        gen_cpu = gen1 - gen0
        gen = {k: gen_counters1[k] - gen_counters0.get(k, 0) for k in gen_counters1}
        sent = gen.get("packets_sent", sent1 - sent0)
        gen_drops = drops_between(drops0[1], drops1[1])
        loss = round((expected_pkts - received) / expected_pkts * 100, 3) if expected_pkts else None
        out: dict[str, Any] = {
            "mode": self.mode,
            "generator_kind": self.generator,
            "rooms": self.rooms,
            "participants": self.participants,
            "seconds": round(elapsed, 2),
            "loadavg": os.getloadavg(),
            "server_processes": len(pids),
            "server_cpu_seconds": round(cpu, 3),
            "server_cpu_cores": round(cpu / elapsed, 3),
            "forwarded_packets": int(egress),
            "forwarded_packets_source": "engine counter (/metrics)" if forwarded > 0 else "clients' received count",
            "forwarded_packets_per_s": round(egress / elapsed, 1),
            "forwarded_packets_per_server_core_s": round(egress / cpu, 1) if cpu > 0 else None,
            "cpu_us_per_forwarded_packet": round(cpu / egress * 1e6, 2) if egress else None,
            "streams_expected": total * expected * 2,
            "streams_flowing": streams_flowing,
            "video_frames_delivered_per_s": round(frames / elapsed, 1),
            # one forwarded 640x480@30 stream = 30 delivered frames/s (+ its audio): CPU cores per such stream
            "cpu_cores_per_forwarded_video_stream": round(cpu / elapsed / (frames / elapsed / fps), 5)
            if frames
            else None,
            "received_packets_per_s": round(received / elapsed, 1),
            "loss_pct": loss,
            "loss_pct_per_stream": percentiles(per_stream["loss_pct"], (50, 99, 100)),
            # where the loss happened: datagrams the kernel dropped because a receive buffer was full
            "udp_drops": {"sfu_sockets": drops_between(drops0[0], drops1[0]), "generator_sockets": gen_drops},
            # share of the window the process was runnable but waited for a CPU (other load on the machine)
            "runqueue_wait_share": {
                "sfu": round((wait1[0] - wait0[0]) / elapsed, 3),
                "generator": round((wait1[1] - wait0[1]) / elapsed, 3),
            },
            "video_kbps_per_stream": {
                **percentiles(per_stream["video_kbps"], (1, 50, 99)),
                "mean": round(sum(per_stream["video_kbps"]) / max(len(per_stream["video_kbps"]), 1), 1),
            },
            "audio_kbps_per_stream": {
                **percentiles(per_stream["audio_kbps"], (1, 50, 99)),
                "mean": round(sum(per_stream["audio_kbps"]) / max(len(per_stream["audio_kbps"]), 1), 1),
            },
            "latency_ms": {**percentiles(bench.latency_ms, (50, 90, 99)), "samples": len(bench.latency_ms)}
            if bench.latency_ms
            else None,
            "sfu_ingress_latency_ms": {**percentiles(bench.ingress_ms, (50, 90, 99)), "samples": len(bench.ingress_ms)}
            if bench.ingress_ms
            else None,
            "join_to_first_frame_ms": {
                **percentiles(first_frame, (50, 95, 100)),
                "pairs": len(first_frame),
                "missing": missing_video,
            },
            "nacks_to_publishers": sum(p.nacks_got for p in people),
            "plis_to_publishers": sum(p.plis_got for p in people),
            "decoding_subscriber": {
                "frames": dict(decoder.decoded),
                "video_size": decoder.decoded_size,
                "nacks_sent": decoder.nacks_sent,
                "plis_sent": decoder.plis_sent,
            }
            if decoder
            else None,
            "engine_counters": {
                k: fwd1.get(k, 0) - fwd0.get(k, 0) if k.endswith("_total") else fwd1.get(k) for k in fwd1
            }
            if urls
            else None,
            "generator_cpu_cores": round(gen_cpu / elapsed, 3),
            "generator_loop_lag_ms": percentiles(lag, (50, 99)),
            "generator": self._generator_figures(
                gen,
                gen_cpu,
                elapsed,
                sent,
                received,
                lag,
                gen_drops,
                generator_cores,
                gen_user1 - gen_user0,
                (wait1[1] - wait0[1]) / elapsed,
            ),
            "join_failures": self.join_failures[:5],
            "signaling_errors": sorted({e for p in people for e in p.errors}),
            "unknown_ssrc_packets": sum(p.unknown for p in people),
        }
        return out

    def _generator_counters(self) -> dict[str, float]:
        if self.replayer is None:
            return {}
        people = self.people
        return {
            **self.replayer.counters(),
            "sampled": sum(getattr(p, "sampled", 0) for p in people),
            "sample_authentic": sum(getattr(p, "sample_clear", 0) for p in people),
            "sample_matched": sum(getattr(p, "sample_matched", 0) for p in people),
            "payload_mismatch": sum(getattr(p, "payload_mismatch", 0) for p in people),
            "unknown_ssrc": sum(m.unknown for m in self.muxes),
            "recv_calls": sum(m.reads for m in self.muxes),
            "datagrams_in": sum(m.datagrams for m in self.muxes),
        }

    def _generator_figures(
        self,
        gen: dict[str, float],
        cpu: float,
        elapsed: float,
        sent: float,
        received: float,
        lag: list[float],
        drops: int,
        cores: float,
        user: float,
        waited: float,
    ) -> dict[str, Any]:
        """What the generator cost and whether it kept up (then the server's figures are the server's)."""
        packets = sent + received
        loop_lag = percentiles(lag, (50, 99))
        out: dict[str, Any] = {
            "kind": self.generator,
            "cpu_cores": round(cpu / elapsed, 3),
            "cpu_user_share": round(user / cpu, 2) if cpu > 0 else None,  # the rest is the kernel's (UDP, loopback)
            "cores_available": cores,
            "packets_sent_per_s": round(sent / elapsed, 1),
            "packets_received_per_s": round(received / elapsed, 1),
            "cpu_us_per_packet": round(cpu / packets * 1e6, 2) if packets else None,
            "packets_per_core_s": round(packets / cpu, 0) if cpu > 0 else None,
            "loop_lag_ms": loop_lag,
            "udp_drops": drops,
        }
        reasons = []
        if cpu / elapsed > GENERATOR_CPU_SHARE * cores:
            reasons.append(f"CPU {cpu / elapsed:.2f} of {cores:g} cores")
        if loop_lag["p99"] > GENERATOR_LOOP_LAG_P99_MS:
            reasons.append(f"event loop lag p99 {loop_lag['p99']:.0f} ms")
        if drops:
            reasons.append(f"{drops} datagrams dropped on its sockets")
        if self.replayer is not None:
            send_lag = percentiles(self.replayer.lag_ms, (50, 99, 100))
            out["send_lag_ms"] = send_lag
            out["frames_sent"] = gen["frames_sent"]
            out["frames_skipped"] = gen["frames_skipped"]
            out["keyframes_requested"] = gen["keyframes_requested"]
            out["retransmitted"] = gen["retransmitted"]
            out["send_errors"] = gen["send_errors"]
            out["samples"] = {
                "decrypted": gen["sample_authentic"],
                "sent_to_decrypt": gen["sampled"],
                "matched_a_sent_frame": gen["sample_matched"],
                "payload_mismatch": gen["payload_mismatch"],
            }
            out["sockets"] = len(self.muxes)
            out["datagrams_per_read"] = round(gen["datagrams_in"] / gen["recv_calls"], 1) if gen["recv_calls"] else None
            out["tick_ms"] = percentiles(self.replayer.tick_ms, (50, 99, 100))
            # the pacing task's own CPU (build, SRTP, sendmmsg incl. the loopback delivery) per packet sent;
            # everything else (reads, counting, samples, RTCP, ICE, signaling) per packet received
            send_cpu = gen["send_cpu"]
            out["cpu_us_per_packet_sent"] = round(send_cpu / sent * 1e6, 2) if sent else None
            out["cpu_us_per_packet_received"] = round((cpu - send_cpu) / received * 1e6, 2) if received else None
            if send_lag["p99"] > GENERATOR_SEND_LAG_P99_MS:
                reasons.append(f"frames left {send_lag['p99']:.0f} ms late (p99)")
            if gen["frames_skipped"]:
                reasons.append(f"{gen['frames_skipped']:.0f} frames skipped")
        if reasons and waited > GENERATOR_WAIT_SHARE:
            # not its own cost: other processes (the server included) held the CPUs it may use
            reasons.append(f"it waited for a CPU {waited:.0%} of the window (other processes held the cores)")
        out["saturated"] = bool(reasons)
        out["saturation"] = reasons
        return out

    async def close(self) -> None:
        if self.replayer is not None:
            await self.replayer.stop()
        await asyncio.gather(*(p.close() for p in self.people), return_exceptions=True)
        for mux in self.muxes:
            mux.close()
        if self.janus is not None:
            await self.janus.close()
        if self.mode == "ours":
            for r in self.setup:
                try:
                    await api_json(self.http, "POST", f"{self.base}/api/rooms/{r['session_id']}/end", r["tokens"][0])
                except RuntimeError:
                    pass
        await asyncio.sleep(1.0)


def client_session() -> aiohttp.ClientSession:
    """Every participant's signaling socket holds a connection: no pool limit (aiohttp's default 100
    would leave /metrics waiting for one from 20 rooms of 5 on)."""
    return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60), connector=aiohttp.TCPConnector(limit=0))


def generator_cores(cpus: Optional[set[int]]) -> float:
    return float(len(cpus)) if cpus else float(os.cpu_count() or 1)


async def run_size(
    *,
    mode: str,
    fps: int,
    base: str,
    rooms: int,
    participants: int,
    duration: float,
    ramp: float,
    warmup: float,
    pids: list[int],
    clips: dict[str, Any],
    redis_url: Optional[str],
    run_id: str,
    label: str,
    generator: str = "aiortc",
    audio_level: bool = True,
    client_cpus: Optional[set[int]] = None,
    sockets: int = 0,
    timed: int = 1,
) -> dict[str, Any]:
    """``rooms`` rooms joined at once, one measured window, everyone leaves."""
    gc.collect()
    async with client_session() as http:
        load = Load(
            mode=mode,
            generator=generator,
            base=base,
            participants=participants,
            clips=clips,
            http=http,
            run_id=f"{run_id}{rooms}",
            audio_level=audio_level,
            sockets=sockets,
            timed=timed,
        )
        try:
            await load.add_rooms(rooms, ramp=ramp, warmup=warmup, label=label)
            urls = await metric_urls(base, redis_url) if mode == "ours" else []
            out = await load.measure(
                duration=duration,
                pids=pids,
                urls=urls,
                fps=fps,
                label=label,
                generator_cores=generator_cores(client_cpus),
            )
            if load.janus is not None:
                out["negotiated"] = load.janus.negotiated
            return out
        finally:
            await load.close()


def verdict(step: dict[str, Any]) -> Optional[str]:
    """Why the sweep stops after this step (None: go on). The generator is judged first."""
    gen = step["generator"]
    if gen["saturated"]:
        return "generator saturated: " + "; ".join(gen["saturation"])
    if step["join_failures"]:
        # a refused or timed-out join: whose fault is not known from here, the errors say
        return f"joins failed: {step['join_failures'][0][:120]}"
    if step["streams_flowing"] < step["streams_expected"]:
        return f"server: {step['streams_expected'] - step['streams_flowing']} streams not flowing"
    if step["loss_pct"] is not None and step["loss_pct"] > MAX_LOSS_PCT:
        return f"server: loss {step['loss_pct']:.2f} % > {MAX_LOSS_PCT} %"
    p99 = (step["latency_ms"] or {}).get("p99")
    if p99 is not None and p99 > MAX_LATENCY_P99_MS:
        return f"server: SFU-added latency p99 {p99:.1f} ms > {MAX_LATENCY_P99_MS:g} ms"
    return None


def busy_note(step: dict[str, Any]) -> str:
    """What other load on the machine took from the server during the window, if that is notable."""
    waited = step["runqueue_wait_share"]["sfu"]
    return (
        f" (the server waited for a CPU {waited:.0%} of the window: other processes, the generator "
        f"included, held the cores)"
        if waited > GENERATOR_WAIT_SHARE
        else ""
    )


async def sweep(
    *,
    args: argparse.Namespace,
    clips: dict[str, Any],
    workers: int,
    run_id: str,
    server_cpus: Optional[set[int]],
    client_cpus: Optional[set[int]],
) -> dict[str, Any]:
    """One server with ``workers`` processes; rooms added until a criterion fails."""
    server = BenchServer(Path(tempfile.mkdtemp(prefix="pl-sfusweep-")), workers, per_peer_ports=shares_sockets(args))
    server.start()
    pids = server.pids()
    if server_cpus and workers == 1:
        for pid in pids:
            pin(pid, server_cpus)
    redis_url = server.env.get("PEERLEARN_REDIS_URL") if workers > 1 else None
    steps: list[dict[str, Any]] = []
    stop: Optional[str] = None
    try:
        async with client_session() as http:
            load = Load(
                mode="ours",
                generator=args.generator,
                base=server.url,
                participants=args.participants,
                clips=clips,
                http=http,
                run_id=f"{run_id}w{workers}",
                audio_level=args.audio_level,
                sockets=args.generator_sockets,
                timed=args.timed_per_room,
            )
            try:
                target = 1
                while target <= args.sweep_max:
                    label = f"sweep {workers}w {target}x{args.participants}"
                    try:
                        await load.add_rooms(
                            target - load.rooms, ramp=args.ramp * (target - load.rooms), warmup=args.warmup, label=label
                        )
                        urls = await metric_urls(server.url, redis_url)
                        step = await load.measure(
                            duration=args.duration,
                            pids=server.pids(),
                            urls=urls,
                            fps=args.fps,
                            label=label,
                            generator_cores=generator_cores(client_cpus),
                        )
                    except (OSError, asyncio.TimeoutError, RuntimeError, aiohttp.ClientError) as exc:
                        # the steps so far stand; this one could not be measured
                        stop = f"step {target} rooms not measured: {exc!r}"
                        print(f"\n{label}: {stop}", file=sys.stderr)
                        break
                    stop = verdict(step)
                    if stop and args.sweep_confirm:
                        # one bad window (a burst of other load on a shared machine) is not a capacity:
                        # the step is measured again and the second window decides
                        print(f"\n{label}: {stop}; measuring again", file=sys.stderr)
                        first = step
                        step = await load.measure(
                            duration=args.duration,
                            pids=server.pids(),
                            urls=urls,
                            fps=args.fps,
                            label=label,
                            generator_cores=generator_cores(client_cpus),
                        )
                        step["first_window"] = {"verdict": stop, "summary": summary_line(first)}
                        stop = verdict(step)
                    if stop and stop.startswith("server"):
                        stop += busy_note(step)
                    step["verdict"] = stop or "ok"
                    steps.append(step)
                    print(f"\n{label}: {summary_line(step)}", file=sys.stderr)
                    if stop:
                        break
                    target = args.sweep_step if target == 1 and args.sweep_step > 1 else target + args.sweep_step
                else:
                    stop = f"--sweep-max {args.sweep_max} rooms reached"
            finally:
                await load.close()
    finally:
        server.stop()
    ok = [s for s in steps if s["verdict"] == "ok"]
    best = ok[-1] if ok else None
    return {
        "workers": workers,
        "steps": steps,
        "stopped": stop,
        "limited_by": "generator"
        if stop and stop.startswith("generator")
        else "server"
        if stop and stop.startswith("server")
        else "joins"
        if stop and stop.startswith("joins")
        else "measurement error"
        if stop and stop.startswith("step")
        else "sweep range",
        "max_rooms": best["rooms"] if best else 0,
        "at_max": {
            k: best[k]
            for k in (
                "forwarded_packets_per_s",
                "server_cpu_cores",
                "forwarded_packets_per_server_core_s",
                "cpu_us_per_forwarded_packet",
                "loss_pct",
                "latency_ms",
            )
        }
        if best
        else None,
    }


def summary_line(step: dict[str, Any]) -> str:
    gen = step["generator"]
    return (
        f"{step['forwarded_packets_per_s']:.0f} fwd pkt/s, server {step['server_cpu_cores']:.2f} cores, "
        f"{step['cpu_us_per_forwarded_packet']} us/pkt, loss {step['loss_pct']} %, "
        f"latency p99 {(step['latency_ms'] or {}).get('p99')} ms | generator {gen['cpu_cores']:.2f} cores, "
        f"{gen['cpu_us_per_packet']} us/pkt, drops {gen['udp_drops']} -> {step.get('verdict', '')}"
    )


# ---------------------------------------------------------------- report


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [r for r in report["runs"] if r["mode"] == "ours"]
    base = report.get("baseline")
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    xs = [f"{r['rooms']}x{r['participants']}" for r in runs]
    ax = axes[0]
    ax.bar(xs, [r["cpu_us_per_forwarded_packet"] or 0 for r in runs], color="#2563eb", label="ours")
    if base:
        ax.bar(
            [f"baseline {base['rooms']}x{base['participants']}"],
            [base["cpu_us_per_forwarded_packet"] or 0],
            color="#dc2626",
            label="MediaRelay + re-encode",
        )
        ax.set_yscale("log")
    ax.axhline(20, color="black", linestyle="--", linewidth=1, label="target 20 µs")
    ax.set_ylabel("SFU CPU µs per forwarded packet")
    ax.set_title("CPU per forwarded packet")
    ax.legend(fontsize=8)
    ax = axes[1]
    ax.bar(xs, [r["forwarded_packets_per_s"] for r in runs], color="#16a34a")
    for x, r in zip(xs, runs):
        ax.annotate(
            f"{r['server_cpu_cores']:.2f} cores",
            (x, r["forwarded_packets_per_s"]),
            ha="center",
            va="bottom",
            fontsize=8,
        )
    ax.set_ylabel("forwarded packets/s")
    ax.set_title("throughput (rooms x participants)")
    ax = axes[2]
    lat = [(r["latency_ms"] or {}).get("p99", 0) for r in runs]
    ff = [r["join_to_first_frame_ms"]["p95"] for r in runs]
    loss = [r["loss_pct"] or 0 for r in runs]
    w = 0.28
    idx = range(len(runs))
    ax.bar([i - w for i in idx], lat, width=w, label="latency p99 (ms)")
    ax.bar(list(idx), [f / 10 for f in ff], width=w, label="join→first frame p95 (×10 ms)")
    ax.bar([i + w for i in idx], [lo * 100 for lo in loss], width=w, label="loss (×0.01 %)")
    ax.set_xticks(list(idx), xs)
    ax.set_title("quality")
    ax.legend(fontsize=8)
    fig.suptitle(
        f"SFU load — {report['machine']['cpu']} ({report['machine']['cores']} cores), "
        f"loadavg {report['loadavg_start'][0]:.1f}",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def plot_sweep(report: dict[str, Any], path: Path) -> None:
    """The capacity curve: throughput, CPU per packet (server's and the generator's), quality, cores used."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(19, 4.8))
    colors = {1: "#2563eb", 2: "#9333ea"}
    stops: list[str] = []
    for sw in report["sweeps"]:
        steps = sw["steps"]
        if not steps:
            continue
        w = sw["workers"]
        c = colors.get(w, "#64748b")
        xs = [s["rooms"] for s in steps]
        gen = [s["generator"] for s in steps]
        label = f"{w} worker{'s' if w > 1 else ''}"
        ax = axes[0]
        ax.plot(xs, [s["forwarded_packets_per_s"] for s in steps], "o-", color=c, label=f"forwarded, {label}")
        ax.plot(
            xs,
            [g["packets_sent_per_s"] + g["packets_received_per_s"] for g in gen],
            "s:",
            color=c,
            alpha=0.6,
            label=f"generator sent+received, {label}",
        )
        ax = axes[1]
        ax.plot(
            xs,
            [s["cpu_us_per_forwarded_packet"] or 0 for s in steps],
            "o-",
            color=c,
            label=f"server, per forwarded packet ({label})",
        )
        ax.plot(
            xs,
            [g["cpu_us_per_packet"] or 0 for g in gen],
            "s:",
            color=c,
            alpha=0.6,
            label=f"generator, per packet sent or received ({label})",
        )
        ax = axes[2]
        ax.plot(
            xs,
            [(s["latency_ms"] or {}).get("p99", 0) for s in steps],
            "o-",
            color=c,
            label=f"SFU-added latency p99 ms ({label})",
        )
        ax.plot(
            xs, [(s["loss_pct"] or 0) * 10 for s in steps], "^--", color=c, alpha=0.7, label=f"loss ×0.1 % ({label})"
        )
        ax = axes[3]
        ax.plot(xs, [s["server_cpu_cores"] for s in steps], "o-", color=c, label=f"server cores ({label})")
        ax.plot(xs, [g["cpu_cores"] for g in gen], "s:", color=c, alpha=0.6, label=f"generator cores ({label})")
        for x, s, g in zip(xs, steps, gen):
            if g["udp_drops"] or s["udp_drops"]["sfu_sockets"]:
                ax.annotate(
                    f"drops s{s['udp_drops']['sfu_sockets']}/g{g['udp_drops']}",
                    (x, g["cpu_cores"]),
                    fontsize=7,
                    color="#dc2626",
                )
        stops.append(f"{label}: max {sw['max_rooms']} rooms; stopped at {steps[-1]['rooms']}: {sw['stopped']}")
    axes[0].set_title("throughput")
    axes[0].set_ylabel("packets/s")
    axes[1].set_title("CPU µs per packet")
    axes[1].axhline(10, color="black", linestyle="--", linewidth=1, label="target 10 µs")
    axes[2].set_title("quality at subscribers")
    axes[2].axhline(
        MAX_LATENCY_P99_MS,
        color="black",
        linestyle="--",
        linewidth=1,
        label=f"limit {MAX_LATENCY_P99_MS:g} ms / {MAX_LOSS_PCT} %",
    )
    axes[3].set_title("CPU cores used")
    for ax in axes:
        ax.set_xlabel(f"rooms of {report['params']['participants']}")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.text(0.01, 0.01, "\n".join(stops), fontsize=8, va="bottom")
    fig.suptitle(
        f"SFU capacity — {report['machine']['cpu']} ({report['machine']['cores']} cores), generator "
        f"{report['params']['generator']}, loadavg {report['loadavg_start'][0]:.1f}",
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0.02 + 0.03 * len(stops), 1, 1))
    fig.savefig(path, dpi=110)


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    from benchmarks.media import make_clip

    clips = {
        "video": make_clip(
            "video", seconds=args.clip_seconds, width=args.width, height=args.height, fps=args.fps, kbps=args.video_kbps
        ),
        "audio": make_clip("audio", seconds=args.clip_seconds),
    }
    sizes = [int(x) for x in str(args.rooms).split(",") if x.strip()]
    sweep_workers = [int(x) for x in str(args.sweep_workers).split(",") if x.strip()]
    run_id = uuid.uuid4().hex[:6]
    report: dict[str, Any] = {
        "benchmark": "sfu_load",
        "machine": machine(),
        "command": command_line(),
        "loadavg_start": os.getloadavg(),
        "params": {
            "rooms": sizes if not args.sweep else None,
            "participants": args.participants,
            "duration": args.duration,
            "ramp": args.ramp,
            "warmup": args.warmup,
            "workers": args.workers,
            "baseline": args.baseline,
            "baseline_rooms": args.baseline_rooms,
            "peer": args.peer,
            "generator": args.generator,
            "event_loop": args.loop,
            "generator_sockets": (args.generator_sockets or "one per participant")
            if args.generator == "replay"
            else None,
            "timed_per_room": args.timed_per_room if args.generator == "replay" else None,
            "server_udp": "a port per peer %d-%d" % BenchServer.PER_PEER_PORTS
            if shares_sockets(args)
            else "one shared port per process (the server's default)",
            "audio_level": args.audio_level if args.generator == "replay" else False,
            "sweep": {
                "step": args.sweep_step,
                "max_rooms": args.sweep_max,
                "workers": sweep_workers,
                "max_loss_pct": MAX_LOSS_PCT,
                "max_latency_p99_ms": MAX_LATENCY_P99_MS,
            }
            if args.sweep
            else None,
            "video": f"VP8 {args.width}x{args.height}@{args.fps}, clip {clips['video'].bitrate / 1000:.0f} kbps "
            f"(target {args.video_kbps}), keyframe every 2 s and on PLI",
            "audio": f"Opus 20 ms, {clips['audio'].bitrate / 1000:.0f} kbps",
        },
        "runs": [],
    }
    server_cpus, client_cpus = pinning(args)
    report["pinning"] = {
        "server_cpus": sorted(server_cpus) if server_cpus else "unpinned",
        "generator_cpus": sorted(client_cpus) if client_cpus else "unpinned",
        "client_rcvbuf": CLIENT_RCVBUF,
        "latency_sample": f"1 in {SAMPLE_MASK + 1}",
    }
    if args.sweep:
        report["sweeps"] = []
        for workers in sweep_workers:
            report["sweeps"].append(
                await sweep(
                    args=args,
                    clips=clips,
                    workers=workers,
                    run_id=run_id,
                    server_cpus=server_cpus,
                    client_cpus=client_cpus,
                )
            )
    else:
        server: Optional[BenchServer] = None
        redis_url = os.environ.get("PEERLEARN_REDIS_URL")
        if args.url:
            base = args.url.rstrip("/")
            pids = [args.server_pid] if args.server_pid else []
        else:
            server = BenchServer(
                Path(tempfile.mkdtemp(prefix="pl-sfuload-")), args.workers, per_peer_ports=shares_sockets(args)
            )
            server.start()
            base = server.url
            pids = server.pids()
            if server_cpus:
                for pid in pids:
                    pin(pid, server_cpus)
            redis_url = server.env.get("PEERLEARN_REDIS_URL") if args.workers > 1 else None
        janus = None
        if args.peer == "janus":
            from benchmarks.janus_peer import JanusServer

            janus = JanusServer()
            await janus.start()
            if server_cpus:
                pin(janus.pid, server_cpus)
        try:
            for rooms in sizes:
                result = await run_size(
                    mode="ours",
                    fps=args.fps,
                    base=base,
                    rooms=rooms,
                    participants=args.participants,
                    duration=args.duration,
                    ramp=args.ramp * rooms,
                    warmup=args.warmup,
                    pids=pids,
                    clips=clips,
                    redis_url=redis_url,
                    run_id=run_id,
                    label=f"ours {rooms}x{args.participants}",
                    generator=args.generator,
                    audio_level=args.audio_level,
                    client_cpus=client_cpus,
                    sockets=args.generator_sockets,
                    timed=args.timed_per_room,
                )
                print(f"\n{rooms}x{args.participants}: {summary_line(result)}", file=sys.stderr)
                report["runs"].append(result)
                if janus is not None:  # the same rooms through Janus, right after ours
                    peer = await run_size(
                        mode="janus",
                        fps=args.fps,
                        base=janus.url,
                        rooms=rooms,
                        participants=args.participants,
                        duration=args.duration,
                        ramp=args.ramp * rooms,
                        warmup=args.warmup,
                        pids=[janus.pid],
                        clips=clips,
                        redis_url=None,
                        run_id=run_id,
                        label=f"janus {rooms}x{args.participants}",
                        client_cpus=client_cpus,
                    )
                    print(f"\njanus {rooms}x{args.participants}: {summary_line(peer)}", file=sys.stderr)
                    result.update(peer_comparison(result, peer))
                    report.update(peer_comparison(result, peer))
        finally:
            if server is not None:
                server.stop()
            if janus is not None:
                janus.stop()
    if args.baseline:
        bserver = BaselineServer()
        bserver.start()
        assert bserver.proc is not None
        if server_cpus:
            pin(bserver.proc.pid, server_cpus)
        try:
            report["baseline"] = await run_size(
                mode="baseline",
                fps=args.fps,
                base=bserver.url,
                rooms=args.baseline_rooms,
                participants=args.participants,
                duration=args.duration,
                ramp=args.ramp,
                warmup=args.warmup + 5,
                pids=[bserver.proc.pid],
                clips=clips,
                redis_url=None,
                run_id=run_id,
                label=f"baseline {args.baseline_rooms}x{args.participants}",
                client_cpus=client_cpus,
            )
        finally:
            bserver.stop()
        ours_runs = report["runs"] or (report["sweeps"][0]["steps"] if report.get("sweeps") else [])
        if ours_runs:
            ours = next((r for r in ours_runs if r["rooms"] == args.baseline_rooms), ours_runs[0])
            report["ratio_vs_baseline"] = baseline_ratio(ours, report["baseline"])
    report["loadavg_end"] = os.getloadavg()
    return report


def shares_sockets(args: argparse.Namespace) -> bool:
    """Participants share generator sockets: the server must then give each peer its own port (its
    shared port tells peers apart by source address, and they would all have one)."""
    return args.generator == "replay" and args.generator_sockets > 0


def peer_comparison(ours: dict[str, Any], peer: dict[str, Any]) -> dict[str, Any]:
    """The fields issue 28 names: the peer's run (its ``cpu_us_per_forwarded_packet`` among
    them), ours per forwarded packet, and peer / ours (above 1: the peer spends more)."""
    mine, theirs = ours.get("cpu_us_per_forwarded_packet"), peer.get("cpu_us_per_forwarded_packet")
    return {
        "peer": {"name": "janus", **peer},
        "cpu_us_per_forwarded_packet": mine,
        "ratio_peer_over_ours": round(theirs / mine, 2) if mine and theirs else None,
    }


def baseline_ratio(ours: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """How many times the re-encoding relay's CPU ours is, per forwarded packet and per video stream."""

    def ratio(key: str) -> Optional[float]:
        return round(b[key] / ours[key], 1) if b.get(key) and ours.get(key) else None

    return {
        "compared": f"ours {ours['rooms']}x{ours['participants']} vs baseline {b['rooms']}x{b['participants']}",
        "cpu_per_forwarded_packet": ratio("cpu_us_per_forwarded_packet"),
        "cpu_per_forwarded_video_stream": ratio("cpu_cores_per_forwarded_video_stream"),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--url",
        help="a running PeerLearn server (default: start one; needs a high "
        "PEERLEARN_AUTH_RATE_LIMIT there, the script registers users)",
    )
    ap.add_argument("--server-pid", type=int, help="with --url: the server process to measure CPU of")
    ap.add_argument("--rooms", default="1,5,10", help="room counts, run one after the other (e.g. 1,5,10)")
    ap.add_argument("--participants", type=int, default=5, help="per room (1 mentor + learners)")
    ap.add_argument(
        "--generator",
        choices=("replay", "aiortc"),
        default="replay",
        help="replay: pre-packetized RTP on the native path (cheap); aiortc: aiortc's own media path",
    )
    ap.add_argument(
        "--loop",
        choices=("uvloop", "asyncio"),
        default="uvloop",
        help="the generator's event loop (uvloop when installed)",
    )
    ap.add_argument(
        "--audio-level",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="replay: audio packets carry the audio-level extension, as browsers send it (aiortc's "
        "sender does not for pre-encoded audio)",
    )
    ap.add_argument(
        "--generator-sockets",
        type=int,
        default=0,
        help="replay: UDP sockets the participants "
        "share (0: one each). Shared sockets read in batches, but the server then needs a port per "
        "peer (started so here; a --url server must be configured so)",
    )
    ap.add_argument(
        "--timed-per-room",
        type=int,
        default=1,
        help="replay, a socket each: learners per room "
        "whose sockets are read on arrival (their samples give the latency); the others are read "
        "once per 5 ms tick, far cheaper (participants: all of them)",
    )
    ap.add_argument(
        "--sweep",
        action="store_true",
        help="the capacity curve: add rooms until loss > 0.5 %% or latency p99 > 10 ms (or the generator saturates)",
    )
    ap.add_argument("--sweep-step", type=int, default=2, help="rooms added per step (the first step is 1 room)")
    ap.add_argument("--sweep-max", type=int, default=60, help="stop there at the latest")
    ap.add_argument("--sweep-workers", default="1", help="one sweep per server process count, e.g. 1,2")
    ap.add_argument(
        "--sweep-confirm",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="measure a failing step again before stopping (default on)",
    )
    ap.add_argument("--video-kbps", type=int, default=600)
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--clip-seconds", type=float, default=10.0)
    ap.add_argument("--duration", type=float, default=20.0, help="measured seconds per room size / sweep step")
    ap.add_argument(
        "--ramp", type=float, default=1.0, help="seconds between joins ... per room (total ramp = ramp x rooms)"
    )
    ap.add_argument("--warmup", type=float, default=4.0, help="seconds after the ramp before measuring")
    ap.add_argument("--workers", type=int, default=1, help="server processes (needs redis-server when > 1)")
    ap.add_argument(
        "--server-cpus",
        default="off",
        help="CPUs for the server process (taskset list, off, or "
        "auto: the last core when --workers 1 on >= 2 cores). Only on an otherwise idle machine: "
        "pinned, the SFU cannot escape other processes on its core (see runqueue_wait_share)",
    )
    ap.add_argument(
        "--client-cpus",
        default="auto",
        help="CPUs for this load generator (taskset list, or off); "
        "auto: the cores the server does not get when the server is pinned",
    )
    ap.add_argument(
        "--latency-sample",
        type=int,
        default=8,
        help="subscribers decrypt 1 video packet in N (a "
        "power of 2) for latency samples; the rest are counted from the SRTP header",
    )
    ap.add_argument(
        "--baseline",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run the MediaRelay re-encoding baseline (default on)",
    )
    ap.add_argument("--baseline-rooms", type=int, default=1)
    ap.add_argument(
        "--peer",
        choices=("none", "janus"),
        default="none",
        help="janus: each room count also through Janus (Debian's janus package, started here), right "
        "after ours, with the same participants; needs --generator aiortc for now",
    )
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", help="results directory (default benchmarks/results)")
    ap.add_argument("--no-plot", action="store_true")
    args = ap.parse_args()
    if args.out:
        common.RESULTS = Path(args.out)
    if args.sweep and args.url:
        ap.error("--sweep starts its own servers (1 vs 2 workers): no --url")
    if args.peer == "janus" and (args.generator != "aiortc" or args.sweep):
        ap.error("--peer janus runs room counts (no --sweep) with --generator aiortc")
    random.seed(args.seed)
    global SAMPLE_MASK
    SAMPLE_MASK = max(1, args.latency_sample) - 1
    _, client_cpus = pinning(args)
    if client_cpus:
        pin(os.getpid(), client_cpus)
    report = run_loop(main_async(args), args.loop)
    path = write_report("sfu_load", report)
    if not args.no_plot:
        if args.sweep:
            plot_sweep(report, path.with_suffix(".png"))
        else:
            plot(report, path.with_suffix(".png"))
    print(json.dumps(report, indent=2, default=str))
    print(f"report: {path}" + ("" if args.no_plot else f"  plot: {path.with_suffix('.png')}"), file=sys.stderr)
    return 0


def run_loop(coro: Any, kind: str) -> Any:
    if kind == "uvloop":
        try:
            import uvloop
        except ImportError:
            print("uvloop is not installed: asyncio's loop", file=sys.stderr)
        else:
            return uvloop.run(coro)
    return asyncio.run(coro)


if __name__ == "__main__":
    raise SystemExit(main())
