"""Where a server's CPU goes during a measured window, from ``perf`` samples, in µs per forwarded packet.

``sfu_load.py --profile`` records the server (ours, and Janus with ``--peer janus``) with
``perf record -g`` over exactly the measured window, then sorts every sample into one bucket by the
object its leaf frame ran in and, inside the kernel, by the system call or softirq on its stack:

- ``kernel_send``: ``sendmmsg``/``sendmsg``/``sendto`` up to the device;
- ``kernel_delivery``: softirq packet delivery (``net_rx_action``). On loopback this is the
  receivers' side of our own sends, which the kernel runs on the sender's CPU and charges to it;
  on a real NIC it runs on other hosts;
- ``kernel_receive``: ``recvmmsg``/``recvmsg``/``recvfrom``;
- ``kernel_wait``: ``epoll``, scheduling, futexes, sleeps;
- ``kernel_other``;
- ``srtp``: libsrtp and the cipher code it calls (pylibsrtp's bundle with its OpenSSL; Debian's
  libsrtp2, Janus's, with NSS: libsoftokn3, libfreebl, libnspr4 ...);
- ``interpreter``: CPython (the Python code of the server and the objects our Cython touches);
- ``sfu_code``: the SFU's own native code (our Cython modules; Janus's binary, plugin, glib, libnice);
- ``libc`` (malloc, memcpy), ``event_loop`` (uvloop), ``other``.

Each bucket's share of the samples times the window's measured CPU per forwarded packet gives its µs
per forwarded packet. ``transport_us`` adds the buckets every SFU on kernel UDP sockets with SRTP
pays on this bench, whatever its own code does: sending, the loopback delivery charged to it,
receiving and SRTP. They are measured in the live process, so how warm the server keeps its caches
shows in them too. ``perf`` costs the server something: a profiled 5 x 5 window read about 5 %
above an unprofiled one (two alternating pairs, session 14), so compare profiled runs with
profiled runs. With ``PEERLEARN_PROFILE_KEEP=1`` each window's ``perf.data`` is kept (its path is
printed) for ``perf report -i``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Optional

# the transport buckets first, so in the plot's stacks they are the bottom and the line marks their top
BUCKETS = (
    "kernel_send",
    "kernel_delivery",
    "kernel_receive",
    "srtp",
    "kernel_wait",
    "kernel_other",
    "interpreter",
    "sfu_code",
    "libc",
    "event_loop",
    "other",
)
# the transport: what any SFU on kernel UDP sockets and SRTP pays per forwarded packet on this bench
TRANSPORT_BUCKETS = ("kernel_send", "kernel_delivery", "kernel_receive", "srtp")

_SEND = ("sendmmsg", "sendmsg", "sendto", "__sys_sendmsg")
_RECEIVE = ("recvmmsg", "recvmsg", "recvfrom", "__sys_recvmsg")
_WAIT = ("epoll", "schedule", "futex", "nanosleep", "poll_schedule", "do_select", "do_sys_poll")
_DELIVERY = ("net_rx_action", "process_backlog", "__netif_receive_skb")
# the cipher code under libsrtp: OpenSSL (pylibsrtp bundles its own), or NSS and NSPR, which Debian's
# libsrtp2 (Janus's) is built on
_CRYPTO = ("libcrypto", "libsoftokn3", "libfreebl", "libnss3", "libnssutil3", "libnspr4", "libplds4", "libplc4")


class ProfileError(RuntimeError):
    """perf is missing or refused to record."""


def kernel_bucket(kernel_frames: Iterable[str]) -> str:
    """The bucket of a sample whose leaf is in the kernel, from its kernel frames (leaf first)."""
    frames = list(kernel_frames)
    # delivery first: softirq work runs inside a send (bh enable) or on an interrupt's exit, and is
    # the receivers' work wherever it interrupts
    if any(f.startswith(_DELIVERY) for f in frames):
        return "kernel_delivery"
    for f in frames:
        if any(k in f for k in _SEND):
            return "kernel_send"
        if any(k in f for k in _RECEIVE):
            return "kernel_receive"
    if any(any(k in f for k in _WAIT) for f in frames):
        return "kernel_wait"
    return "kernel_other"


def object_bucket(dso: str) -> str:
    """The bucket of a sample whose leaf frame ran in user space, from its object's path."""
    name = os.path.basename(dso)
    if "srtp" in dso or name.startswith(_CRYPTO):
        return "srtp"
    if name.startswith("libpython") or name.startswith("python3") or "/lib-dynload/" in dso:
        return "interpreter"
    if name.startswith(("libc.so", "libc-", "libm.so")):
        return "libc"
    if "uvloop" in dso or name.startswith("_asyncio"):
        return "event_loop"
    if "/sfu/" in dso or "janus" in dso or name.startswith(("libglib", "libnice", "libgobject")):
        return "sfu_code"
    return "other"


def classify(script: Iterable[str]) -> Counter[tuple[str, str]]:
    """Sample counts per (bucket, leaf symbol) from ``perf script -F comm,tid,ip,sym,dso`` output
    with call chains.

    A sample is a header line, then one ``<ip> <symbol> (<object>)`` line per frame, leaf first,
    then a blank line."""
    counts: Counter[tuple[str, str]] = Counter()
    frames: list[tuple[str, str]] = []

    def close() -> None:
        if not frames:
            return
        leaf_sym, leaf_dso = frames[0]
        if leaf_dso.startswith("[kernel"):
            kernel = [sym for sym, dso in frames if dso.startswith("[kernel")]
            counts[kernel_bucket(kernel), leaf_sym] += 1
        else:
            counts[object_bucket(leaf_dso), leaf_sym] += 1
        frames.clear()

    for raw in script:
        line = raw.strip()
        if not line:
            close()
            continue
        if raw[:1] in (" ", "\t"):  # a frame
            _ip, _, rest = line.partition(" ")
            sym, _, dso = rest.rpartition(" (")
            frames.append((sym, dso.rstrip(")")))
        else:  # a new sample's header
            close()
    close()
    return counts


def breakdown(counts: Counter[tuple[str, str]], us_per_packet: Optional[float], top: int = 4) -> dict[str, Any]:
    """Shares and µs per forwarded packet by bucket, each bucket's largest leaf functions, and the
    transport cost (kernel UDP + SRTP) they add up to."""
    total = sum(counts.values())
    per_bucket: Counter[str] = Counter()
    for (bucket, _sym), n in counts.items():
        per_bucket[bucket] += n
    share = {b: round(per_bucket[b] / total, 4) if total else 0.0 for b in BUCKETS}
    out: dict[str, Any] = {"samples": total, "share": share}
    functions: dict[str, dict[str, float]] = {}
    for bucket in BUCKETS:
        ranked = sorted(((n, sym) for (b, sym), n in counts.items() if b == bucket), reverse=True)[:top]
        functions[bucket] = {sym: round(n / total, 4) for n, sym in ranked}
    out["top_functions_share"] = functions
    if us_per_packet:
        us = {b: round(share[b] * us_per_packet, 3) for b in BUCKETS}
        out["us_per_forwarded_packet"] = us
        out["transport_buckets"] = list(TRANSPORT_BUCKETS)
        out["transport_us"] = round(sum(us[b] for b in TRANSPORT_BUCKETS), 3)
    return out


def profile_line(profile: dict[str, Any]) -> str:
    """One line for the terminal: µs per forwarded packet by bucket, largest first, and the transport."""
    us = profile.get("us_per_forwarded_packet")
    if not us:
        return f"  profile: {profile['samples']} samples, no packets forwarded"
    parts = ", ".join(f"{b} {v:.2f}" for b, v in sorted(us.items(), key=lambda kv: -kv[1]) if v >= 0.01)
    return f"  profile (µs/forwarded packet): {parts}; transport (kernel UDP + SRTP) {profile['transport_us']:.2f}"


class PerfRecorder:
    """``perf record -g`` on a set of processes over one window."""

    def __init__(self, pids: list[int], hz: int = 1999) -> None:
        if shutil.which("perf") is None:
            raise ProfileError("--profile needs perf (Debian: apt-get install linux-perf)")
        self.pids = pids
        self.hz = hz
        self._dir = tempfile.mkdtemp(prefix="pl-perf-")
        self.path = Path(self._dir) / "perf.data"
        self._proc: Optional[subprocess.Popen[bytes]] = None

    def start(self) -> None:
        cmd = ["perf", "record", "-q", "-F", str(self.hz), "-g", "-o", str(self.path)]
        cmd += ["-p", ",".join(str(p) for p in self.pids)]
        self._proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def stop(self) -> Counter[tuple[str, str]]:
        """End the recording and sort its samples into buckets."""
        proc, self._proc = self._proc, None
        if proc is None:
            raise ProfileError("perf was not started")
        proc.send_signal(signal.SIGINT)
        try:
            _out, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise ProfileError("perf record did not stop") from None
        if not self.path.exists():
            raise ProfileError(f"perf record wrote nothing: {err.decode(errors='replace').strip()[-300:]}")
        script = subprocess.run(
            ["perf", "script", "-i", str(self.path), "-F", "comm,tid,ip,sym,dso"],
            capture_output=True,
            text=True,
            check=False,
        )
        if os.environ.get("PEERLEARN_PROFILE_KEEP"):  # to read further with ``perf report -i``
            print(f"\nperf data kept: {self.path}", file=sys.stderr)
        else:
            shutil.rmtree(self._dir, ignore_errors=True)
        if script.returncode != 0:
            raise ProfileError(f"perf script failed: {script.stderr.strip()[-300:]}")
        return classify(script.stdout.splitlines())


def plot(runs: list[dict[str, Any]], path: Path) -> None:
    """One stacked bar per profiled run: µs per forwarded packet by bucket, the transport marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    profiled = [r for r in runs if r.get("cpu_profile", {}).get("us_per_forwarded_packet")]
    if not profiled:
        return
    fig, ax = plt.subplots(figsize=(max(6, 1.4 * len(profiled) + 3), 5))
    labels = [f"{r['mode']}\n{r['rooms']}x{r['participants']}\nrun {i + 1}" for i, r in enumerate(profiled)]
    bottom = [0.0] * len(profiled)
    cmap = plt.get_cmap("tab20")
    for n, bucket in enumerate(BUCKETS):
        vals = [r["cpu_profile"]["us_per_forwarded_packet"][bucket] for r in profiled]
        ax.bar(labels, vals, bottom=bottom, label=bucket, color=cmap(n))
        bottom = [b + v for b, v in zip(bottom, vals)]
    for i, r in enumerate(profiled):
        ax.plot([i - 0.4, i + 0.4], [r["cpu_profile"]["transport_us"]] * 2, color="black", lw=2)
    ax.set_ylabel("server CPU µs per forwarded packet")
    ax.set_title("Where the server's CPU goes (perf)\nblack line: the transport (kernel send, delivery, receive, SRTP)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
