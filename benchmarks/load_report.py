"""The plots and derived figures of ``sfu_load.py``: room counts, the capacity curve, and the
ratios against the re-encoding baseline and a peer SFU."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any, Optional

from benchmarks.load_sweep import MAX_LATENCY_P99_MS, MAX_LOSS_PCT


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


def _median(values: list[Any]) -> Optional[float]:
    values = [v for v in values if v is not None]
    return round(statistics.median(values), 3) if values else None


def _side(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One side of the alternating pairs: each run's figures and their medians."""
    cpu = [r["cpu_us_per_forwarded_packet"] for r in runs]
    loss = [r["loss_pct"] for r in runs]
    p99 = [(r["latency_ms"] or {}).get("p99") for r in runs]
    return {
        "cpu_us_per_forwarded_packet": _median(cpu),
        "cpu_us_per_forwarded_packet_runs": cpu,
        "forwarded_packets_per_s": _median([r["forwarded_packets_per_s"] for r in runs]),
        "server_cpu_cores": _median([r["server_cpu_cores"] for r in runs]),
        "loss_pct": _median(loss),
        "loss_pct_runs": loss,
        "latency_p99_ms": _median(p99),
        "latency_p99_ms_runs": p99,
        "latency_p50_ms": _median([(r["latency_ms"] or {}).get("p50") for r in runs]),
        "streams_flowing": [f"{r['streams_flowing']}/{r['streams_expected']}" for r in runs],
        "generator_saturated": [r["generator"]["saturated"] for r in runs],
        "runqueue_wait_share_server": [r["runqueue_wait_share"]["sfu"] for r in runs],
        "loadavg": [r["loadavg"][0] for r in runs],
        "negotiated": runs[0].get("negotiated"),
    }


def pair_summary(pairs: list[tuple[dict[str, Any], dict[str, Any]]]) -> dict[str, Any]:
    """Ours and the peer's runs at one room count, alternated: both sides' medians, the ratio of
    each pair (run back to back, so the machine's other load was about the same) and its median."""
    ours, peer = _side([o for o, _ in pairs]), _side([p for _, p in pairs])
    ratios = [
        round(p["cpu_us_per_forwarded_packet"] / o["cpu_us_per_forwarded_packet"], 2)
        if o["cpu_us_per_forwarded_packet"] and p["cpu_us_per_forwarded_packet"]
        else None
        for o, p in pairs
    ]
    ratio = _median(ratios)
    first = pairs[0][0]
    return {
        "rooms": first["rooms"],
        "participants": first["participants"],
        "pairs": len(pairs),
        "ours": ours,
        "peer": {"name": "janus", **peer},
        "ratio_peer_over_ours_per_pair": ratios,
        "ratio_peer_over_ours": ratio,
        # the fields issue 28 names, at the top level of the report
        "headline": {
            "cpu_us_per_forwarded_packet": ours["cpu_us_per_forwarded_packet"],
            "peer": {"name": "janus", **peer},
            "ratio_peer_over_ours": ratio,
        },
    }


def plot_peer(report: dict[str, Any], path: Path) -> None:
    """Ours against the peer, pair by pair: CPU per forwarded packet, loss, latency p99."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = report["peer_pairs"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))
    labels: list[str] = []
    series: dict[str, list[float]] = {"ours_cpu": [], "peer_cpu": [], "ours_loss": [], "peer_loss": []}
    lat: dict[str, list[float]] = {"ours": [], "peer": []}
    for g in groups:
        for n in range(g["pairs"]):
            labels.append(f"{g['rooms']}x{g['participants']}\npair {n + 1}")
            for side in ("ours", "peer"):
                series[f"{side}_cpu"].append(g[side]["cpu_us_per_forwarded_packet_runs"][n] or 0)
                series[f"{side}_loss"].append(g[side]["loss_pct_runs"][n] or 0)
                lat[side].append(g[side]["latency_p99_ms_runs"][n] or 0)
    x = list(range(len(labels)))
    w = 0.38
    for ax, key, title in (
        (axes[0], "cpu", "server CPU µs per forwarded packet"),
        (axes[1], "loss", "loss at subscribers (%)"),
    ):
        ax.bar([i - w / 2 for i in x], series[f"ours_{key}"], width=w, color="#2563eb", label="PeerLearn")
        ax.bar([i + w / 2 for i in x], series[f"peer_{key}"], width=w, color="#f59e0b", label="Janus VideoRoom")
        ax.set_xticks(x, labels, fontsize=7)
        ax.set_ylim(0, max([*series[f"ours_{key}"], *series[f"peer_{key}"], 0.1]) * 1.15)
        ax.set_title(title)
        ax.legend(fontsize=8)
    axes[2].bar([i - w / 2 for i in x], lat["ours"], width=w, color="#2563eb", label="PeerLearn")
    axes[2].bar([i + w / 2 for i in x], lat["peer"], width=w, color="#f59e0b", label="Janus VideoRoom")
    axes[2].set_xticks(x, labels, fontsize=7)
    axes[2].set_title("send → subscriber latency p99 (ms)")
    axes[2].legend(fontsize=8)
    ratios = ", ".join(f"{g['rooms']}x{g['participants']}: {g['ratio_peer_over_ours']}" for g in groups)
    fig.suptitle(
        f"PeerLearn vs Janus, same replayed load, alternating — Janus/ours per packet (median) {ratios} — "
        f"{report['machine']['cpu']} ({report['machine']['cores']} cores), loadavg {report['loadavg_start'][0]:.1f}",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
