"""A user-space UDP impairment relay between browsers and the SFU's media port: random loss,
delay, jitter and blackouts, per direction and per participant.

This kernel has no ``netem`` (and ``tc`` only shapes rate), so loss and delay are made here.
The SFU announces the relay's port in its ICE candidates (``PEERLEARN_RTC_ANNOUNCED_PORT``,
with one RTC port the relay sends to, and ``PEERLEARN_RTC_PRIVATE_CANDIDATES=deny`` so the
SFU never checks a browser's own address and every packet takes the relay). Each client
address gets its own upstream socket, so the SFU sees one peer per browser as through a NAT.

Impairments are chosen per client by its ICE username fragment (the ``a=ice-ufrag`` of the
browser's description, seen in its STUN checks), so a test impairs exactly the mentor's link
whatever the order people join in; ``ufrag=None`` sets everyone's default. ``up`` is client
to SFU, ``down`` SFU to client. Delay and jitter keep packet order (a packet never leaves
before the one ahead of it), as a queue on a real path does; loss is independent per packet.

Used by ``tests/browser/test_room_loss.py`` and ``benchmarks/loss_sweep.py``; runs alone too::

    python -m benchmarks.impair --listen 127.0.0.1:40100 --target 127.0.0.1:40000 --up-loss 5 --delay-ms 40
"""

from __future__ import annotations

import argparse
import asyncio
import random
import socket
import struct
import threading
from dataclasses import dataclass, field
from typing import Any, Optional

_STUN_MAGIC = b"\x21\x12\xa4\x42"


@dataclass(frozen=True)
class Impairment:
    """One direction of one link: ``loss`` a fraction (0.05 = 5 %), ``delay`` and ``jitter``
    in seconds (each packet waits delay +- uniform jitter, never overtaking), ``blackout``
    drops everything."""

    loss: float = 0.0
    delay: float = 0.0
    jitter: float = 0.0
    blackout: bool = False


CLEAN = Impairment()


@dataclass
class Counts:
    received: int = 0
    dropped: int = 0
    sent: int = 0
    #: how late the delayed packets left, summed (microseconds): a relay starved of CPU
    #: adds delay and jitter of its own, which senders read as a queue
    late_us: int = 0


@dataclass
class _Flow:
    client: tuple[str, int]
    sock: socket.socket
    ufrag: Optional[str] = None
    last_departure: dict[str, float] = field(default_factory=lambda: {"up": 0.0, "down": 0.0})
    counts: dict[str, Counts] = field(default_factory=lambda: {"up": Counts(), "down": Counts()})


def client_ufrag(data: bytes) -> Optional[str]:
    """The sender's ufrag in a STUN binding request's USERNAME (``receiver:sender``)."""
    if len(data) < 20 or data[0] > 1 or data[4:8] != _STUN_MAGIC:
        return None
    end = min(len(data), 20 + struct.unpack_from("!H", data, 2)[0])
    pos = 20
    while pos + 4 <= end:
        attr, length = struct.unpack_from("!HH", data, pos)
        if attr == 0x0006:
            name = data[pos + 4 : pos + 4 + length].decode("utf-8", "replace")
            return name.split(":", 1)[1] if ":" in name else None
        pos += 4 + length + (-length & 3)
    return None


class ImpairmentRelay(asyncio.DatagramProtocol):
    """Listens on one UDP port for clients and relays each to ``target`` through its own socket."""

    def __init__(self, target: tuple[str, int], *, seed: int = 1) -> None:
        self.target = target
        self.rng = random.Random(seed)
        self.default: dict[str, Impairment] = {"up": CLEAN, "down": CLEAN}
        self.by_ufrag: dict[str, dict[str, Impairment]] = {}
        self.flows: dict[tuple[str, int], _Flow] = {}
        self.transport: Optional[asyncio.DatagramTransport] = None
        self.loop: Optional[asyncio.AbstractEventLoop] = None

    # ------------------------------------------------------------ control

    async def start(self, listen: tuple[str, int] = ("127.0.0.1", 0)) -> int:
        self.loop = asyncio.get_running_loop()
        await self.loop.create_datagram_endpoint(lambda: self, local_addr=listen)
        assert self.transport is not None
        return int(self.transport.get_extra_info("sockname")[1])

    def impair(self, *, ufrag: Optional[str] = None, up: Impairment = CLEAN, down: Impairment = CLEAN) -> None:
        """``up``/``down`` for the client using ``ufrag`` (None: every client without its own)."""
        if ufrag is None:
            self.default = {"up": up, "down": down}
        else:
            self.by_ufrag[ufrag] = {"up": up, "down": down}

    def counts(self, ufrag: Optional[str] = None) -> dict[str, dict[str, int]]:
        """Packets received, dropped and sent per direction (one client's, or everyone's)."""
        out = {d: {"received": 0, "dropped": 0, "sent": 0, "late_us": 0} for d in ("up", "down")}
        for flow in self.flows.values():
            if ufrag is not None and flow.ufrag != ufrag:
                continue
            for d, c in flow.counts.items():
                out[d]["received"] += c.received
                out[d]["dropped"] += c.dropped
                out[d]["sent"] += c.sent
                out[d]["late_us"] += c.late_us
        return out

    def close(self) -> None:
        for flow in self.flows.values():
            if self.loop is not None:
                self.loop.remove_reader(flow.sock.fileno())
            flow.sock.close()
        self.flows.clear()
        if self.transport is not None:
            self.transport.close()
            self.transport = None

    # ------------------------------------------------------------ packets

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        client = (addr[0], addr[1])
        flow = self.flows.get(client)
        if flow is None:
            flow = self._open(client)
        if flow.ufrag is None:
            flow.ufrag = client_ufrag(data)
        self._relay(flow, "up", data)

    def _open(self, client: tuple[str, int]) -> _Flow:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((self.target[0], 0))
        sock.setblocking(False)
        flow = _Flow(client, sock)
        self.flows[client] = flow
        assert self.loop is not None
        self.loop.add_reader(sock.fileno(), self._drain, flow)
        return flow

    def _drain(self, flow: _Flow) -> None:
        for _ in range(64):
            try:
                data = flow.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            self._relay(flow, "down", data)

    def _impairment(self, flow: _Flow, direction: str) -> Impairment:
        own = self.by_ufrag.get(flow.ufrag) if flow.ufrag is not None else None
        return (own or self.default)[direction]

    def _relay(self, flow: _Flow, direction: str, data: bytes) -> None:
        counts = flow.counts[direction]
        counts.received += 1
        rule = self._impairment(flow, direction)
        if rule.blackout or (rule.loss and self.rng.random() < rule.loss):
            counts.dropped += 1
            return
        if not rule.delay and not rule.jitter:
            self._send(flow, direction, data)
            return
        assert self.loop is not None
        now = self.loop.time()
        wait = max(0.0, rule.delay + (self.rng.uniform(-rule.jitter, rule.jitter) if rule.jitter else 0.0))
        # strictly after the packet ahead: asyncio's timer heap does not keep equal times in order
        departure = max(now + wait, flow.last_departure[direction] + 1e-6)
        flow.last_departure[direction] = departure
        self.loop.call_at(departure, self._send, flow, direction, data, departure)

    def _send(self, flow: _Flow, direction: str, data: bytes, due: Optional[float] = None) -> None:
        if due is not None and self.loop is not None:
            flow.counts[direction].late_us += max(int((self.loop.time() - due) * 1e6), 0)
        try:
            if direction == "up":
                flow.sock.sendto(data, self.target)
            elif self.transport is not None:
                self.transport.sendto(data, flow.client)
            else:
                return
        except OSError:
            return
        flow.counts[direction].sent += 1


class RelayThread:
    """An ``ImpairmentRelay`` on its own event loop in a thread, for synchronous callers
    (Playwright tests, benchmark drivers). Its methods are safe to call from any thread."""

    def __init__(self, target: tuple[str, int], *, listen: tuple[str, int] = ("127.0.0.1", 0), seed: int = 1) -> None:
        self.relay = ImpairmentRelay(target, seed=seed)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="impairment-relay", daemon=True)
        self._thread.start()
        self.port = asyncio.run_coroutine_threadsafe(self.relay.start(listen), self._loop).result(10)

    def impair(self, *, ufrag: Optional[str] = None, up: Impairment = CLEAN, down: Impairment = CLEAN) -> None:
        self._loop.call_soon_threadsafe(lambda: self.relay.impair(ufrag=ufrag, up=up, down=down))

    def counts(self, ufrag: Optional[str] = None) -> dict[str, dict[str, int]]:
        async def read() -> dict[str, dict[str, int]]:
            return self.relay.counts(ufrag)

        return asyncio.run_coroutine_threadsafe(read(), self._loop).result(10)

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self.relay.close)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host or "127.0.0.1", int(port)


async def _main(args: argparse.Namespace) -> None:
    relay = ImpairmentRelay(_address(args.target), seed=args.seed)
    port = await relay.start(_address(args.listen))
    one_way = args.delay_ms / 1000
    jitter = args.jitter_ms / 1000
    relay.impair(
        up=Impairment(args.up_loss / 100, one_way, jitter),
        down=Impairment(args.down_loss / 100, one_way, jitter),
    )
    print(f"relaying 127.0.0.1:{port} -> {args.target}", flush=True)
    try:
        while True:
            await asyncio.sleep(5)
            print(relay.counts(), flush=True)
    finally:
        relay.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", default="127.0.0.1:0", help="address:port clients send to (the announced port)")
    parser.add_argument("--target", required=True, help="the SFU's media address:port")
    parser.add_argument("--up-loss", type=float, default=0.0, help="%% of client->SFU packets dropped")
    parser.add_argument("--down-loss", type=float, default=0.0, help="%% of SFU->client packets dropped")
    parser.add_argument("--delay-ms", type=float, default=0.0, help="one-way delay each direction (RTT = 2x)")
    parser.add_argument("--jitter-ms", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=1)
    asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
