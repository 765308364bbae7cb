"""Shape one local UDP port's incoming traffic with tc (htb on loopback), for tests and
benchmarks that need one participant on a weak link. Needs root and iproute2."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

# the local UDP port of a room page's media path (its selected ICE candidate pair)
MEDIA_PORT_JS = """async () => {
  const report = await window.__room.pc.getStats();
  let pair = null;
  report.forEach((s) => { if (s.type === "transport" && s.selectedCandidatePairId) pair = report.get(s.selectedCandidatePairId); });
  // Firefox reports no transport: its selected pair says so itself
  report.forEach((s) => { if (!pair && s.type === "candidate-pair" && (s.selected || s.nominated) && s.state === "succeeded") pair = s; });
  const local = pair && report.get(pair.localCandidateId);
  return local ? local.port : 0;
}"""


@contextmanager
def downlink_limited(port: int, kbit: int) -> Iterator[None]:
    """Packets to local UDP ``port`` go through a ``kbit`` kbit/s bottleneck (tc htb on
    loopback, where every packet between two local addresses travels)."""

    def tc(*args: str) -> None:
        subprocess.run(["tc", *args], check=True, capture_output=True)

    tc("qdisc", "add", "dev", "lo", "root", "handle", "1:", "htb", "default", "99")
    try:
        tc(
            "class",
            "add",
            "dev",
            "lo",
            "parent",
            "1:",
            "classid",
            "1:10",
            "htb",
            "rate",
            f"{kbit}kbit",
            "ceil",
            f"{kbit}kbit",
        )
        # a bottleneck's buffer holds about a second of its rate, as access links' do: htb's
        # default leaf queue (loopback's txqueuelen, 1000 packets) is half a minute at
        # 300 kbit/s, which delays the connection's STUN keepalives until the browser
        # declares it dead, where a real link would drop packets and the SFU step down
        tc("qdisc", "add", "dev", "lo", "parent", "1:10", "pfifo", "limit", str(max(8, kbit // 10)))
        # ICE may pick an IPv6 pair (a local fd00:: address travels over loopback too)
        for prio, family, match in (("1", "ip", "ip"), ("2", "ipv6", "ip6")):
            tc(
                "filter",
                "add",
                "dev",
                "lo",
                "protocol",
                family,
                "parent",
                "1:",
                "prio",
                prio,
                "u32",
                "match",
                match,
                "protocol",
                "17",
                "0xff",
                "match",
                match,
                "dport",
                str(port),
                "0xffff",
                "flowid",
                "1:10",
            )
        yield
    finally:
        subprocess.run(["tc", "qdisc", "del", "dev", "lo", "root"], capture_output=True)


# the SFU's UDP port as this page sees it (the remote candidate of its selected pair)
SFU_PORT_JS = """async () => {
  const report = await window.__room.pc.getStats();
  let pair = null;
  report.forEach((s) => { if (s.type === "transport" && s.selectedCandidatePairId) pair = report.get(s.selectedCandidatePairId); });
  report.forEach((s) => { if (!pair && s.type === "candidate-pair" && (s.selected || s.nominated) && s.state === "succeeded") pair = s; });
  const remote = pair && report.get(pair.remoteCandidateId);
  return remote ? remote.port : 0;
}"""


@contextmanager
def blackout(*ports: int) -> Iterator[None]:
    """Every UDP packet from or to the local ``ports`` is dropped (an 8 bit/s class with a
    one-packet queue: this kernel has htb and pfifo but no netem) while inside. Refuses
    when loopback already has a root qdisc: another run on this machine is shaping it."""

    def tc(*args: str) -> None:
        subprocess.run(["tc", *args], check=True, capture_output=True)

    shown = subprocess.run(["tc", "qdisc", "show", "dev", "lo"], check=True, capture_output=True, text=True).stdout
    if "htb" in shown or "1:" in shown:
        raise RuntimeError(f"loopback is already shaped by someone else: {shown.strip()}")
    tc("qdisc", "add", "dev", "lo", "root", "handle", "1:", "htb", "default", "99")
    try:
        tc("class", "add", "dev", "lo", "parent", "1:", "classid", "1:10", "htb", "rate", "8bit", "ceil", "8bit")
        tc("qdisc", "add", "dev", "lo", "parent", "1:10", "pfifo", "limit", "1")
        prio = 1
        for port, (family, match) in ((p, f) for p in sorted(set(ports)) for f in (("ip", "ip"), ("ipv6", "ip6"))):
            for direction in ("dport", "sport"):
                tc(
                    "filter", "add", "dev", "lo", "protocol", family, "parent", "1:", "prio", str(prio),
                    "u32", "match", match, "protocol", "17", "0xff", "match", match, direction, str(port), "0xffff",
                    "flowid", "1:10",
                )  # fmt: skip
                prio += 1
        yield
    finally:
        subprocess.run(["tc", "qdisc", "del", "dev", "lo", "root"], capture_output=True)
