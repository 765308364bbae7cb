"""What the SFU benchmarks read about processes from /proc: CPU time, children, CPU pinning,
kernel UDP drops per socket, and time spent waiting for a CPU."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Optional

CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = raw[raw.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def child_pids(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                raw = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(raw[raw.rindex(")") + 2 :].split()[1]) == pid:
                out.append(int(entry))
    return out


def parse_cpus(spec: str) -> set[int]:
    """taskset-style list: "1", "0,2", "0-3"."""
    out: set[int] = set()
    for part in spec.split(","):
        if "-" in part:
            lo, hi = part.split("-")
            out.update(range(int(lo), int(hi) + 1))
        elif part.strip():
            out.add(int(part))
    return out


def pin(pid: int, cpus: set[int]) -> None:
    """Like ``taskset -a -p -c``: every thread of ``pid`` (threads started later inherit it)."""
    try:
        tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        tids = [pid]
    for tid in tids:
        try:
            os.sched_setaffinity(tid, cpus)
        except OSError:
            pass


def pinning(args: argparse.Namespace) -> tuple[Optional[set[int]], Optional[set[int]]]:
    """(server cpus, generator cpus). auto: one server process gets the last core to itself and the load
    generator the others, so neither starves the other (2 cores: ``taskset -c 1`` server, ``-c 0`` clients)."""
    cores = os.cpu_count() or 1
    server = args.server_cpus
    clients = args.client_cpus
    if server == "auto":
        server = str(cores - 1) if cores >= 2 and args.workers == 1 and not args.url else "off"
    if clients == "auto":
        clients = ",".join(str(c) for c in range(cores - 1)) if server != "off" else "off"
    return (None if server == "off" else parse_cpus(server)), (None if clients == "off" else parse_cpus(clients))


def socket_inodes(pid: int) -> set[int]:
    out = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:["):
                out.add(int(link[8:-1]))
    except OSError:
        pass
    return out


def udp_drops(pids: list[int]) -> dict[int, int]:
    """Per UDP socket (inode) of these processes: datagrams the kernel dropped (receive buffer full),
    from /proc/net/udp. Compare two snapshots with ``drops_between`` (sockets come and go)."""
    inodes: set[int] = set()
    for pid in pids:
        inodes |= socket_inodes(pid)
    out: dict[int, int] = {}
    for name in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            lines = Path(name).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if len(f) >= 13 and int(f[9]) in inodes:
                out[int(f[9])] = int(f[12])
    return out


def drops_between(before: dict[int, int], after: dict[int, int]) -> int:
    return sum(max(0, n - before.get(inode, 0)) for inode, n in after.items())


def runqueue_wait(pids: list[int]) -> float:
    """Seconds these processes' threads were runnable but waiting for a CPU (/proc/PID/task/TID/schedstat):
    how much other load on the machine delayed them."""
    total = 0
    for pid in pids:
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                total += int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[1])
            except (OSError, IndexError, ValueError):
                pass
    return total / 1e9
