"""SRTP per packet, by protection profile and by how many streams a context holds.

What the SFU pays libsrtp for each forwarded packet (one unprotect at the publisher's
context, one protect per subscriber's): measured through the SFU's own native binding
(``sfu/transport/_fastio.pyx`` ``SendBatch.add_srtp`` / ``SrtpContext.unprotect``: libsrtp's
``srtp_t`` called from C, as the hot path does), on 1,200-byte RTP packets.

- per profile: AES_CM_128_HMAC_SHA1_80 (what aiortc and Chromium used to agree on when
  aiortc answered), AEAD_AES_128_GCM (what the SFU now prefers) and AEAD_AES_256_GCM
  (what aiortc's own list put first);
- per stream count: ``srtp_protect`` finds the packet's stream by SSRC in the context's
  stream list (``srtp_stream_list_get``) before the cipher runs; a subscriber's tx context
  holds one stream per SSRC it sends (4 publishers x audio + video + RTX = 12 at 5 x 5).
  Each packet here goes to the last stream added (the longest search with a linked list).

CPU time of this process (best of ``--repeat``), so a loaded machine inflates it less than
wall time; the Python loop around each call is the same for every row (``empty``: a batch
add of a packet without SRTP, the loop's own cost, reported so it can be subtracted).

    .venv/bin/python benchmarks/srtp_profiles.py --packets 50000
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import sys
import time
from pathlib import Path
from typing import Any, Callable

import pylibsrtp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks import common  # noqa: E402
from benchmarks.common import command_line, machine, write_report  # noqa: E402

#: (name, libsrtp profile, master key + salt length)
PROFILES = [
    ("AES_CM_128_HMAC_SHA1_80", pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80, 30),
    ("AEAD_AES_128_GCM", pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_128_GCM, 28),
    ("AEAD_AES_256_GCM", pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_256_GCM, 44),
]
STREAM_COUNTS = (1, 4, 12, 24)


def rtp(seq: int, ssrc: int, size: int) -> bytes:
    return struct.pack("!BBHII", 0x80, 96, seq & 0xFFFF, seq * 3000, ssrc) + bytes(size - 12)


def best(fn: Callable[[], None], repeat: int) -> float:
    out = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        fn()
        out = min(out, time.process_time() - start)
    return out


def run(packets: int, repeat: int, size: int) -> dict[str, Any]:
    from sfu.transport import _fastio as io  # type: ignore[attr-defined]

    dest = io.Destination(("127.0.0.1", 9))
    results: dict[str, Any] = {}

    def protect_loop(make: Callable[[], Any], data: list[bytes]) -> Callable[[], None]:
        # a fresh context per repeat: libsrtp refuses to protect a packet index twice
        def go() -> None:
            ctx = make()
            batch = io.SendBatch()
            add = batch.add_srtp
            drain = batch.drain
            for p in data:
                if not add(ctx, p, dest):
                    drain()
                    add(ctx, p, dest)
            assert batch.refused == 0, "libsrtp refused packets: the figure would be meaningless"

        return go

    def empty_loop(data: list[bytes]) -> Callable[[], None]:
        def go() -> None:
            batch = io.SendBatch()
            add = batch.add
            drain = batch.drain
            for p in data:
                if not add(p, dest):
                    drain()
                    add(p, dest)

        return go

    base = [rtp(i, 0x1000, size) for i in range(packets)]
    results["empty"] = best(empty_loop(base), repeat) / packets * 1e6
    for name, profile, key_len in PROFILES:
        row: dict[str, float] = {}
        for streams in STREAM_COUNTS:

            def make(key: bytes = bytes(range(key_len)), profile: int = profile, streams: int = streams) -> Any:
                ctx = io.SrtpContext(
                    pylibsrtp.Session(
                        pylibsrtp.Policy(key=key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND, srtp_profile=profile)
                    )
                )
                # the context holds ``streams`` streams; the measured SSRC is the last one added
                for s in range(streams):
                    ctx.protect(rtp(0, 0x2000 + s, size))
                return ctx

            data = [rtp(i + 1, 0x2000 + streams - 1, size) for i in range(packets)]
            row[f"protect_{streams}_streams"] = round(best(protect_loop(make, data), repeat) / packets * 1e6, 3)
        # unprotect (the publisher's rx context, one stream per SSRC it sends: 5 here)
        key = bytes(range(key_len))
        tx = pylibsrtp.Session(
            pylibsrtp.Policy(key=key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND, srtp_profile=profile)
        )
        protected = [tx.protect(rtp(i + 1, 0x3000 + i % 5, size)) for i in range(packets)]

        def unprotect(protected: list[bytes] = protected, key: bytes = key, profile: int = profile) -> None:
            rx = io.SrtpContext(
                pylibsrtp.Session(
                    pylibsrtp.Policy(key=key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND, srtp_profile=profile)
                )
            )
            un = rx.unprotect
            for p in protected:
                un(p)

        row["unprotect_5_streams"] = round(best(unprotect, repeat) / packets * 1e6, 3)
        results[name] = row
    results["empty"] = round(results["empty"], 3)
    cm = results["AES_CM_128_HMAC_SHA1_80"]["protect_12_streams"]
    gcm = results["AEAD_AES_128_GCM"]["protect_12_streams"]
    return {
        "packet_bytes": size,
        "packets": packets,
        "us_per_packet": results,
        "gcm128_over_cm_protect_12_streams": round(gcm / cm, 2),
        "stream_search_12_vs_1_us": {
            name: round(results[name]["protect_12_streams"] - results[name]["protect_1_streams"], 3)
            for name, _, _ in PROFILES
        },
    }


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    us = report["result"]["us_per_packet"]
    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.8 / (len(STREAM_COUNTS) + 1)
    names = [name for name, _, _ in PROFILES]
    for k, streams in enumerate(STREAM_COUNTS):
        values = [us[n][f"protect_{streams}_streams"] for n in names]
        ax.bar([i + k * width for i in range(len(names))], values, width, label=f"protect, {streams} streams")
    values = [us[n]["unprotect_5_streams"] for n in names]
    ax.bar([i + len(STREAM_COUNTS) * width for i in range(len(names))], values, width, label="unprotect, 5 streams")
    ax.axhline(us["empty"], color="#9ca3af", linestyle="--", label=f"loop alone {us['empty']:.2f}")
    ax.set_xticks([i + 0.4 for i in range(len(names))], names, fontsize=8)
    ax.set_ylabel(f"µs per {report['result']['packet_bytes']}-byte packet (CPU)")
    ax.set_title(f"SRTP per packet by profile and streams in the context — {report['machine']['cpu']}", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--packets", type=int, default=50000)
    ap.add_argument("--repeat", type=int, default=5, help="best of N runs")
    ap.add_argument("--size", type=int, default=1200, help="RTP packet bytes")
    ap.add_argument("--out", help="results directory (default benchmarks/results)")
    ap.add_argument("--no-plot", action="store_true")
    args = ap.parse_args()
    if args.out:
        common.RESULTS = Path(args.out)
    report = {
        "benchmark": "srtp_profiles",
        "machine": machine(),
        "command": command_line(),
        "loadavg": os.getloadavg(),
        "result": run(args.packets, args.repeat, args.size),
    }
    path = write_report("srtp_profiles", report)
    if not args.no_plot:
        plot(report, path.with_suffix(".png"))
    print(json.dumps(report, indent=2))
    print(f"report: {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
