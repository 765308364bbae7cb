"""The SFU's forwarding hot path alone, per packet, against the floor on this machine.

Real VP8 RTP packets (the load test's clip, packetized the way aiortc does,
with mid + abs-send-time header extensions) go through:

- ``parse``     RtpForwarder.on_rtp with no consumer (header, extensions, padding, counters)
- ``rewrite``   RtpRewriter.forward: new header + extension block + NACK history (send = no-op)
- ``protect``   SRTP protect (pylibsrtp, AES-CM-128-HMAC-SHA1-80) of the rewritten packet
- ``sendto``    UDP sendto on loopback (raw non-blocking socket; nobody reads, the kernel drops)
- ``sendto_asyncio``  the same through asyncio's ``DatagramTransport.sendto`` wrapper
- ``full``      the real path: RtpForwarder -> 4 RtpRewriters -> sfu.transport.media_transport.DatagramEgress
                (protect + sendto on a real asyncio UDP transport, as the SFU resolves it),
                reported per EGRESS packet; ``full_native``: the C forwarder -> 4 C rewriters
                -> the socket's batch (SRTP in place, sendmmsg), as the SFU runs it
- ``floor``     the least any Python SFU does per egress packet: one struct header pack +
                concatenation, SRTP protect, sendto — nothing else

Times are CPU time of this process (time.process_time), best of --repeat, so
other load on a shared machine inflates them less than wall time would.
Prints µs/packet for each stage and full/floor, writes JSON + a plot.

    .venv/bin/python benchmarks/forwarding_micro.py --packets 20000
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import socket
import struct
import sys
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks import common  # noqa: E402
from benchmarks.common import command_line, machine, write_report  # noqa: E402

FANOUT = 4  # a 5-person room: every packet goes to 4 subscribers
KEY = bytes(range(30))


def vp8_packets(count: int, clip_args: dict[str, Any]) -> list[bytes]:
    """``count`` RTP packets of the benchmark clip (VP8, one-byte extensions: mid=1, abs-send-time=3)."""
    from aiortc.codecs.vpx import Vp8Encoder

    from benchmarks.media import make_clip

    clip = make_clip("video", **clip_args)
    out: list[bytes] = []
    seq = 1000
    pid = 0
    frames = clip.frames * (1 + count // len(clip.frames))
    for data, pts, _key in frames:
        payloads = Vp8Encoder._packetize(data, pid)
        pid = (pid + 1) & 0x7FFF
        for i, payload in enumerate(payloads):
            marker = 0x80 if i == len(payloads) - 1 else 0
            ext = b"\xbe\xde\x00\x02" + b"\x10" + b"0" + b"\x32\x12\x34\x56" + b"\x00\x00"
            out.append(struct.pack("!BBHII", 0x90, marker | 96, seq & 0xFFFF, pts & 0xFFFFFFFF, 0x1234) + ext + payload)
            seq += 1
            if len(out) >= count:
                return out
    return out


def srtp_session() -> Any:
    import pylibsrtp

    policy = pylibsrtp.Policy(key=KEY, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND)
    policy.allow_repeat_tx = True
    return pylibsrtp.Session(policy=policy)


def udp_pair() -> tuple[socket.socket, socket.socket, Any]:
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx.setblocking(False)
    return rx, tx, rx.getsockname()


def timeit(make: Callable[[], Callable[[], Any]], n: int, repeat: int) -> float:
    """Best of ``repeat`` runs of a fresh ``make()`` (fresh SRTP/rewriter state: sequence numbers
    never go backwards), seconds per packet when one call handles n packets."""
    best = float("inf")
    for _ in range(repeat):
        fn = make()
        gc.collect()
        gc.disable()
        t = time.process_time()  # CPU time: other processes on a shared machine don't count
        fn()
        best = min(best, time.process_time() - t)
        gc.enable()
    return best / n


def make_rewriter(send: Callable[[bytes], None]) -> Any:
    from sfu.rtp.forwarding import URI_ABS_SEND_TIME, URI_MID, CallSink, ExtensionWriter, RtpRewriter

    rw = RtpRewriter(
        ssrc=0x5555,
        rtx_ssrc=0x6666,
        clock_rate=90000,
        needs_keyframe=False,
        history_size=1024,
        request_keyframe=lambda: None,
    )
    rw.configure(
        pt_map={96: 100},
        rtx_pt=101,
        ext=ExtensionWriter({URI_MID: 1, URI_ABS_SEND_TIME: 3}, "2"),
        sink=CallSink(send),
        vp8_pts=VP8_PTS,
    )
    return rw


#: the clip's payload type is VP8: the rewriters renumber its picture ids, as the SFU's consumers do
VP8_PTS = frozenset({96})


def make_forwarder(native: bool = False) -> Any:
    from sfu.rtp import native as rtp_native
    from sfu.rtp.forwarding import vp8_is_keyframe

    fwd = rtp_native.forwarder_class(native)(producer_id="pr-bench", kind="video", clock=time.monotonic)
    fwd.detectors[96] = vp8_is_keyframe
    return fwd


def make_writer(srtp: Any, transport: Any, addr: Any) -> Any:
    """The production egress on a real asyncio datagram transport (what a ``MediaTransport``
    installs when its local candidate is not on the SFU's own socket)."""
    from sfu.transport.media_transport import DatagramEgress

    return DatagramEgress(srtp.protect, srtp.protect_rtcp, transport, addr)


async def asyncio_sleep0() -> None:
    import asyncio

    await asyncio.sleep(0)


def asyncio_transport() -> tuple[Any, Any]:
    """(loop, transport): an asyncio UDP transport; its sendto is synchronous while the kernel takes the data."""
    import asyncio

    loop = asyncio.new_event_loop()
    transport, _ = loop.run_until_complete(
        loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0))
    )
    return loop, transport


def run(packets: int, repeat: int, clip_args: dict[str, Any]) -> dict[str, Any]:
    pkts = vp8_packets(packets, clip_args)
    n = len(pkts)
    rx, tx, addr = udp_pair()
    srtp = srtp_session()
    results: dict[str, float] = {}

    def parse() -> Callable[[], Any]:
        fwd = make_forwarder()
        return lambda: [fwd.on_rtp(p) for p in pkts]

    results["parse"] = timeit(parse, n, repeat)
    parsed = []
    from sfu.rtp.forwarding import abs_send_time

    for p in pkts:
        off = 12 + 4 + 4 * 2
        parsed.append(
            (p[1], p[1] & 0x7F, struct.unpack_from("!H", p, 2)[0], struct.unpack_from("!I", p, 4)[0], p[off:])
        )
    abs3 = abs_send_time(time.monotonic())

    def rewrite() -> Callable[[], Any]:
        fwd_ = make_rewriter(lambda _b: None).forward

        def go() -> None:
            for b1, pt, seq, ts, payload in parsed:
                fwd_(b1, pt, seq, ts, payload, abs3, None, True, 0.0)

        return go

    results["rewrite"] = timeit(rewrite, n, repeat)

    def protect_all() -> Callable[[], Any]:
        protect = srtp_session().protect
        return lambda: [protect(p) for p in pkts]

    results["protect"] = timeit(protect_all, n, repeat)
    protected = [srtp.protect(p) for p in pkts]
    sendto = tx.sendto

    def send_all() -> Callable[[], Any]:
        def go() -> None:
            for p in protected:
                try:
                    sendto(p, addr)
                except BlockingIOError:
                    pass

        return go

    results["sendto"] = timeit(send_all, n, repeat)
    loop, transport = asyncio_transport()

    def send_all_asyncio() -> Callable[[], Any]:
        tsendto = transport.sendto
        return lambda: [tsendto(p, addr) for p in protected]

    results["sendto_asyncio"] = timeit(send_all_asyncio, n, repeat)

    hdr = struct.Struct("!BBHII")

    def floor() -> Callable[[], Any]:
        protect = srtp_session().protect

        def go() -> None:
            for b1, pt, seq, ts, payload in parsed:
                try:
                    sendto(protect(hdr.pack(0x80, b1, seq, ts, 0x5555) + payload), addr)
                except BlockingIOError:
                    pass

        return go

    results["floor"] = timeit(floor, n, repeat)
    errors = []

    def full_path() -> Callable[[], Any]:
        full = make_forwarder()
        writers = [make_writer(srtp_session(), transport, addr) for _ in range(FANOUT)]
        errors.append(writers)
        for w in writers:
            full.rewriters = full.rewriters + [make_rewriter(w.send)]
        return lambda: [full.on_rtp(p) for p in pkts]

    results["full"] = timeit(full_path, n * FANOUT, repeat)

    # the native path (sfu/transport/_fastio.pyx, sfu/rtp/_rewriter.pyx): C rewriter -> the socket's
    # BatchSink (SRTP in place) -> one sendmmsg per 64 packets, as the SFU runs it
    from sfu.rtp import native as rtp_native
    from sfu.transport import fastio
    from sfu.transport.media_socket import MediaSocket

    if fastio.NATIVE:
        native = fastio.load(True)

        from sfu.rtp.forwarding import CallSink

        class BatchedSink:
            """What the C rewriter sees of a connected ``MediaTransport`` on our socket."""

            def __init__(self, sink: Any) -> None:
                self.batch_sink = sink

            def send(self, data: bytes) -> None:
                self.batch_sink.send(data)

        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        msock = MediaSocket(loop, sock, asyncio.DatagramProtocol())
        dest = native.Destination(addr)

        def rewrite_native() -> Callable[[], Any]:
            fwd_ = rtp_native.rewriter_class(True)(
                ssrc=0x5555,
                rtx_ssrc=0x6666,
                clock_rate=90000,
                needs_keyframe=False,
                history_size=1024,
                request_keyframe=lambda: None,
            )
            fwd_.configure(
                pt_map={96: 100},
                rtx_pt=101,
                ext=make_rewriter(lambda _b: None).ext,
                sink=CallSink(lambda _b: None),
                vp8_pts=VP8_PTS,
            )
            f = fwd_.forward

            def go() -> None:
                for b1, pt, seq, ts, payload in parsed:
                    f(b1, pt, seq, ts, payload, abs3, None, True, 0.0)

            return go

        results["rewrite_native"] = timeit(rewrite_native, n, repeat)

        def protect_native() -> Callable[[], Any]:
            protect = native.SrtpContext(srtp_session()).protect
            return lambda: [protect(p) for p in pkts]

        results["protect_native"] = timeit(protect_native, n, repeat)

        def sendmmsg_all() -> Callable[[], Any]:
            batch = native.SendBatch()
            fd = sock.fileno()

            def go() -> None:
                add = batch.add
                for p in protected:
                    if not add(p, dest):
                        batch.flush(fd)
                        batch.drain()  # a full kernel buffer: dropped, as sendto's are here
                        add(p, dest)
                batch.flush(fd)
                batch.drain()

            return go

        results["sendmmsg"] = timeit(sendmmsg_all, n, repeat)

        def full_native(twcc: bool = False) -> Callable[[], Any]:
            # ``twcc``: each subscriber negotiated transport-cc (issue 24): every packet is stamped
            # with its transport's next number and noted in the send log
            from sfu.rtp.forwarding import URI_ABS_SEND_TIME, URI_MID, URI_TRANSPORT_CC, ExtensionWriter

            full = make_forwarder(native=True)
            ids = {URI_MID: 1, URI_ABS_SEND_TIME: 3, **({URI_TRANSPORT_CC: 5} if twcc else {})}
            for _ in range(FANOUT):
                writer = BatchedSink(msock.sink(native.SrtpContext(srtp_session()), dest))
                rw = rtp_native.rewriter_class(True)(
                    ssrc=0x5555,
                    rtx_ssrc=0x6666,
                    clock_rate=90000,
                    needs_keyframe=False,
                    history_size=1024,
                    request_keyframe=lambda: None,
                )
                rw.configure(pt_map={96: 100}, rtx_pt=101, ext=ExtensionWriter(ids, "2"), sink=writer, vp8_pts=VP8_PTS)
                if twcc:
                    rw.send_log = rtp_native.send_log_class(True)(5)
                full.rewriters = full.rewriters + [rw]

            def go() -> None:
                on_rtp = full.on_rtp
                for p in pkts:
                    on_rtp(p)
                msock.flush()
                msock._backlog.clear()  # nobody reads: what the kernel refused is dropped

            return go

        results["full_native"] = timeit(full_native, n * FANOUT, repeat)
        results["full_native_twcc"] = timeit(lambda: full_native(True), n * FANOUT, repeat)
        msock.close()
    send_errors = sum(w.errors for ws in errors for w in ws)
    # the ingress share: parse once, amortised over the fan-out
    rx.close()
    tx.close()
    transport.close()
    loop.run_until_complete(asyncio_sleep0())
    loop.close()
    us = {k: round(v * 1e6, 3) for k, v in results.items()}
    return {
        "packets": n,
        "fanout": FANOUT,
        "mean_packet_bytes": round(sum(map(len, pkts)) / n, 1),
        "us_per_packet": us,
        "full_over_floor": round(results["full"] / results["floor"], 2),
        "stages_sum_per_egress": round(
            (results["parse"] / FANOUT + results["rewrite"] + results["protect"] + results["sendto"]) * 1e6, 3
        ),
        "egress_packets_per_core_second": round(1 / results["full"]),
        "egress_packets_per_core_second_native": (
            round(1 / results["full_native"]) if "full_native" in results else None
        ),
        "full_over_full_native": (
            round(results["full"] / results["full_native"], 2) if "full_native" in results else None
        ),
        "send_errors": send_errors,
    }


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    us = report["result"]["us_per_packet"]
    names = [
        n
        for n in (
            "parse",
            "rewrite",
            "rewrite_native",
            "protect",
            "protect_native",
            "sendto",
            "sendmmsg",
            "sendto_asyncio",
            "floor",
            "full",
            "full_native",
            "full_native_twcc",
        )
        if n in us
    ]
    fig, ax = plt.subplots(figsize=(8, 4))
    colors = ["#2563eb" if n.startswith("full") else "#9ca3af" if n == "floor" else "#93c5fd" for n in names]
    ax.bar(names, [us[n] for n in names], color=colors)
    for i, n in enumerate(names):
        ax.annotate(f"{us[n]:.2f}", (i, us[n]), ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("µs per packet (full, floor: per egress packet)")
    ax.set_title(
        f"forwarding hot path: full/floor = {report['result']['full_over_floor']}x "
        f"(fan-out {report['result']['fanout']}) — {report['machine']['cpu']}",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--packets", type=int, default=20000)
    ap.add_argument("--repeat", type=int, default=5, help="best of N runs")
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--clip-seconds", type=float, default=10.0)
    ap.add_argument("--out", help="results directory (default benchmarks/results)")
    ap.add_argument("--no-plot", action="store_true")
    args = ap.parse_args()
    if args.out:
        common.RESULTS = Path(args.out)
    clip_args = {"width": args.width, "height": args.height, "seconds": args.clip_seconds}
    report = {
        "benchmark": "forwarding_micro",
        "machine": machine(),
        "command": command_line(),
        "loadavg": os.getloadavg(),
        "result": run(args.packets, args.repeat, clip_args),
    }
    path = write_report("forwarding_micro", report)
    if not args.no_plot:
        plot(report, path.with_suffix(".png"))
    print(json.dumps(report, indent=2))
    print(f"report: {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
