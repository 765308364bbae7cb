"""The participants of one load run against one server, and its measured windows.

``Load`` joins rooms of synthetic participants (the replay or the aiortc generator, see
``benchmarks/sfu_load.py``) into PeerLearn (``mode="ours"``), into Janus (``"janus"``, through
``benchmarks/janus_peer.py``) or into the re-encoding relay (``"baseline"``), and measures one
window at a time from outside: the server's CPU from ``/proc``, the engine's forwarded-packet
counter, what every subscriber received, and the generator's own cost (so a starved generator
is never mistaken for a slow server). ``run_size`` is one room count: join, measure, leave.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import time
from typing import Any, Callable, Optional

import aiohttp

from benchmarks import common
from benchmarks.aiortc_participants import Bench, Participant, join_baseline, join_ours
from benchmarks.common import percentiles
from benchmarks.cpu_profile import PerfRecorder, breakdown
from benchmarks.procstats import drops_between, proc_cpu, runqueue_wait, udp_drops
from benchmarks.room_api import api_json, make_rooms, metric_urls, scrape_forwarded

#: subscribers decrypt 1 packet in sample_mask + 1 (latency samples); sfu_load's --latency-sample
DEFAULT_SAMPLE_MASK = 7
#: replay: subscribers read once per tick decrypt 1 video packet in this many (validity only)
UNTIMED_SAMPLE = 256

#: the generator is saturated when it uses this share of the cores it may use, or any of these is exceeded
GENERATOR_CPU_SHARE = 0.85
GENERATOR_SEND_LAG_P99_MS = 20.0
GENERATOR_LOOP_LAG_P99_MS = 20.0
#: share of the window the generator may wait for a CPU before its lag is put down to the machine
GENERATOR_WAIT_SHARE = 0.2

Progress = Callable[..., None]


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
        sample_mask: int = DEFAULT_SAMPLE_MASK,
        progress: Progress = common.progress,
    ) -> None:
        if generator not in ("replay", "aiortc"):
            raise TypeError(f"unknown generator {generator!r}")
        if mode == "baseline" and generator != "aiortc":
            # the relay's participants publish and subscribe on two peer connections; the replay
            # participant drives one (Janus's has its own: benchmarks/janus_replay.py)
            raise TypeError("the baseline runs use the aiortc generator")
        self.mode = mode
        self.generator = generator
        self.base = base
        self.participants = participants
        self.http = http
        self.run_id = run_id
        self.bench = Bench(clips, sample_mask)
        #: the progress bar (sfu_soak.py adds the server's RSS to it)
        self.progress = progress
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
            self.progress(n + 1, len(new), f"{label}: joining {n + 1}/{len(new)}")
            if n + 1 == count:
                await asyncio.gather(*tasks, return_exceptions=True)
            await asyncio.sleep(step)
        results = await asyncio.gather(*tasks, return_exceptions=True)
        self.join_failures += [repr(r) for r in results if isinstance(r, BaseException)]
        total = len(self.people) * (self.participants - 1)
        deadline = time.monotonic() + max(warmup, 10)
        while time.monotonic() < deadline:
            got = sum(1 for p in self.people for s in p.streams.values() if s.kind == "video" and s.packets)
            self.progress(got, total, f"{label}: {got}/{total} video streams flowing")
            if got >= total and time.monotonic() - t_start > ramp + warmup:
                break
            await asyncio.sleep(0.5)
        self.progress(1, 1)
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
            if self.mode == "janus":
                from benchmarks.janus_replay import JanusReplayParticipant

                return JanusReplayParticipant(self.bench, self.replayer, mux, room, index, timed=timed)
            return ReplayParticipant(self.bench, self.replayer, mux, room, index, timed=timed)
        # one subscriber of the first room decodes everything (proof the media is valid)
        return Participant(self.bench, room, index, decode=(room == 0 and index == 1))

    async def measure(
        self,
        *,
        duration: float,
        pids: list[int],
        urls: list[str],
        fps: int,
        label: str,
        generator_cores: float,
        profile_hz: int = 0,
    ) -> dict[str, Any]:
        """One window of ``duration`` seconds: the server's cost, what subscribers got, the generator's cost;
        with ``profile_hz``, also where the server's CPU went (``benchmarks/cpu_profile.py``)."""
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
        recorder = PerfRecorder(pids, profile_hz) if profile_hz and pids else None
        if recorder is not None:
            recorder.start()
        t0 = time.monotonic()
        bench.measuring = True
        if replayer is not None:
            replayer.measuring = True
        while (now := time.monotonic()) < t0 + duration:
            self.progress(now - t0, duration, f"{label}: measuring, {len(bench.latency_ms)} latency samples")
            await asyncio.sleep(0.5)
        bench.measuring = False
        if replayer is not None:
            replayer.measuring = False
        t1 = time.monotonic()
        cpu1 = sum(proc_cpu(pid) for pid in pids)
        # perf stops and its samples are read off the loop: the generator keeps its media flowing
        samples = await asyncio.to_thread(recorder.stop) if recorder is not None else None
        gen1 = sum(os.times()[:2])
        gen_user1 = os.times()[0]
        drops1 = (udp_drops(pids), udp_drops([os.getpid()]))
        wait1 = (runqueue_wait(pids), runqueue_wait([os.getpid()]))
        gen_counters1 = self._generator_counters()
        sent1 = sum(p.packets_sent for p in people) if replayer is None else 0
        fwd1 = await scrape_forwarded(http, urls) if urls else {}
        snap1 = {(id(p), s.ssrc): s.snapshot() for p in people for s in p.streams.values()}
        self.progress(1, 1)
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
        # ... and that received in this window (a stream that stopped still "flowed" once)
        streams_receiving = sum(1 for k, v in snap1.items() if v[0] > snap0.get(k, (0,))[0])
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
            "streams_receiving": streams_receiving,
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
        if samples is not None:
            out["cpu_profile"] = breakdown(samples, out["cpu_us_per_forwarded_packet"])
        return out

    def negotiated(self) -> dict[str, Any]:
        """What the server agreed with a learner of the first room (every participant negotiates
        alike): SRTP profile, header extensions, TWCC, RTX, codecs per direction."""
        from benchmarks.negotiation import describe

        learner = next((p for p in self.people if p.room == 0 and p.index == 1), None)
        return describe(learner.pcs) if learner is not None else {}

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
    sample_mask: int = DEFAULT_SAMPLE_MASK,
    progress: Progress = common.progress,
    profile_hz: int = 0,
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
            sample_mask=sample_mask,
            progress=progress,
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
                profile_hz=profile_hz,
            )
            out["negotiated"] = load.negotiated()
            return out
        finally:
            await load.close()


def shares_sockets(args: argparse.Namespace) -> bool:
    """Participants share generator sockets: the server must then give each peer its own port (its
    shared port tells peers apart by source address, and they would all have one)."""
    return args.generator == "replay" and args.generator_sockets > 0


def run_loop(coro: Any, kind: str) -> Any:
    """Run the generator on ``kind``'s event loop (uvloop when installed, else asyncio's)."""
    if kind == "uvloop":
        try:
            import uvloop
        except ImportError:
            print("uvloop is not installed: asyncio's loop", file=sys.stderr)
        else:
            return uvloop.run(coro)
    return asyncio.run(coro)
