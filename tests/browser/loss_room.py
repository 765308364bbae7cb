"""A live server whose media path runs through the user-space impairment relay
(``benchmarks/impair.py``) for the loss tests; what they read of the learner's page is
``benchmarks/loss_probe.py``."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from api.settings import Settings
from benchmarks.impair import RelayThread
from tests.browser.conftest import LiveServer


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
        rtc_opus_dtx=True,  # as measured (docs/media-quality.md)
    ).prepared()
    server = LiveServer(settings)
    server.start()
    try:
        yield server, relay
    finally:
        server.stop()
        relay.close()


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


def upstream_repair(server: LiveServer, session_id: int) -> dict[str, Any]:
    """The SFU's side of a room's video repair now: per publisher and simulcast layer, the
    packets received, the NACKs it sent for them (first requests, retries), the packets
    repaired and given up, its round trip estimate; the keyframes it asked for; per
    subscriber, the NACKs it answered and the keyframes it asked for."""
    from api.keys import ENGINE

    async def read(app: Any) -> dict[str, Any]:
        router = app[ENGINE].get_router(str(session_id))
        assert router is not None
        out: dict[str, Any] = {"producers": {}, "consumers": {}}
        for p in router.producers:
            if p.kind != "video":
                continue
            layers = []
            for layer in p.layers:
                nack = layer.nack
                layers.append(
                    {
                        "packets": layer.media_packets,
                        "nack_requested": getattr(nack, "requested", 0),
                        "nack_retried": getattr(nack, "retried", 0),
                        "repaired": getattr(nack, "repaired", 0),
                        "given_up": getattr(nack, "given_up", 0),
                        "rtt_ms": round(1000 * nack.rtt, 1) if hasattr(nack, "rtt") else None,
                    }
                )
            out["producers"][p.peer_id] = {
                "keyframe_requests": p.keyframe_requests_sent,
                "gaps": p.gaps,
                "layers": layers,
            }
        for peer in router.peers.values():
            for c in peer.consumers.values():
                if c.kind == "video":
                    out["consumers"][f"{peer.id}<-{c.publisher_peer_id}"] = {
                        "nacks": c.nacks,
                        "retransmitted": c.rewriter.retransmitted,
                        "keyframe_requests": c.keyframe_requests,
                        "layer": c.layer,
                        "switches": c.switch.switches if c.switch is not None else 0,
                        "late_keyframes": c.switch.late_keyframes if c.switch is not None else 0,
                    }
        return out

    result: dict[str, Any] = server.run(read)
    return result


def counter_difference(after: Any, before: Any) -> Any:
    """``after - before`` for every number in two nested snapshots (others: ``after``'s)."""
    if isinstance(after, dict) and isinstance(before, dict):
        return {k: counter_difference(v, before.get(k)) for k, v in after.items()}
    if isinstance(after, list) and isinstance(before, list) and len(after) == len(before):
        return [counter_difference(a, b) for a, b in zip(after, before)]
    if isinstance(after, int) and not isinstance(after, bool) and isinstance(before, int):
        return after - before
    return after
