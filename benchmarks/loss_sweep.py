"""Loss sweep: what a learner sees and hears of the mentor as the mentor's uplink loses
0/5/10/20 % of its packets (80 ms round trip), with Opus RED on and off.

``peerlearn serve`` (a subprocess per RED setting) behind the user-space impairment relay
(``benchmarks/impair.py``, announced as the SFU's candidate); the demo mentor and a demo learner,
each in their own Chromium (fake camera at 30 fps, a voiced fake microphone); per loss level,
after a settling time, the learner's ``getStats()``: audio samples concealed, audio level,
video frame rate and the longest wait between frames (``benchmarks/loss_probe.py``).
Prints JSON, writes ``benchmarks/results/loss_sweep-*.json`` and the plot
``benchmarks/figures/loss_sweep.png``.

    .venv/bin/python benchmarks/loss_sweep.py --loss 0,5,10,20 --seconds 10
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import LocalServer, command_line, machine, write_report  # noqa: E402
from benchmarks.impair import Impairment, RelayThread  # noqa: E402
from benchmarks.loss_probe import UFRAG_JS, audio_window, media_args, speech_like_wav, video_window  # noqa: E402
from benchmarks.room_quality import CHROMIUM, LEARNERS, MEDIA_ARGS, MENTOR, PASSWORD, make_class  # noqa: E402

FIGURE = Path(__file__).resolve().parent / "figures" / "loss_sweep.png"


class Person:
    def __init__(self, pw: Any, name: str, email: str, base: str, wav: Path) -> None:
        self.name = name
        self.browser = pw.chromium.launch(executable_path=CHROMIUM, args=media_args(MEDIA_ARGS, wav))
        self.context = self.browser.new_context(viewport={"width": 1280, "height": 800}, base_url=base)
        self.context.grant_permissions(["camera", "microphone"], origin=base)
        resp = self.context.request.post(base + "/api/auth/login", data={"email": email, "password": PASSWORD})
        if not resp.ok:
            raise RuntimeError(f"login {email}: {resp.status}")
        self.page = self.context.new_page()

    @property
    def peer_id(self) -> str:
        return str(self.page.evaluate("() => window.__room && window.__room.peerId"))

    def close(self) -> None:
        self.browser.close()


class PatientServer(LocalServer):
    """``LocalServer`` that waits up to 5 minutes for the first /healthz: on a machine as loaded
    as the shared one, migrating and loading the demo data alone took over a minute."""

    def start(self) -> None:
        import subprocess

        from benchmarks.common import wait_healthy

        cli = [sys.executable, "-m", "api.cli"]
        subprocess.run(
            [*cli, "demo", "--data-dir", str(self.data_dir)], env=self.env, check=True, stdout=subprocess.DEVNULL
        )
        self.proc = subprocess.Popen(
            [*cli, "serve", "--port", str(self.port), "--data-dir", str(self.data_dir)],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_healthy(self.url, timeout=300)


def frames_of(learner: Person, mentor_peer: str) -> int:
    from benchmarks.loss_probe import INBOUND_JS

    stats = learner.page.evaluate(INBOUND_JS, [mentor_peer, "camera"])
    return int(stats.get("framesDecoded") or 0) if stats else 0


def sweep(pw: Any, *, red: bool, losses: list[float], seconds: float, delay: float, wav: Path) -> list[dict[str, Any]]:
    from benchmarks.common import free_port

    sfu_port = free_port()
    relay = RelayThread(("127.0.0.1", sfu_port))
    server = PatientServer(
        Path(tempfile.mkdtemp(prefix="loss-sweep-")),
        env={
            "PEERLEARN_RTC_PORT_MIN": str(sfu_port),
            "PEERLEARN_RTC_PORT_MAX": str(sfu_port),
            "PEERLEARN_RTC_INTERFACES": "127.0.0.1",
            "PEERLEARN_RTC_ANNOUNCED_PORT": str(relay.port),
            "PEERLEARN_RTC_PRIVATE_CANDIDATES": "deny",
            "PEERLEARN_RTC_AUDIO_RED": "true" if red else "false",
            "PEERLEARN_RTC_OPUS_DTX": "true",
        },
    )
    server.start()
    points = []
    people: list[Person] = []
    try:
        learner_email = f"{LEARNERS[0]}@peerlearn.local"
        sid = make_class(server.url, [learner_email])
        mentor = Person(pw, "mentor", MENTOR, server.url, wav)
        learner = Person(pw, "learner", learner_email, server.url, wav)
        people = [mentor, learner]
        for p in people:
            p.page.goto(f"/room/{sid}")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if mentor.page.evaluate("() => !!(window.__room && window.__room.peerId)") and learner.page.evaluate(
                "() => !!(window.__room && window.__room.peerId)"
            ):
                if frames_of(learner, mentor.peer_id) > 30:
                    break
            time.sleep(0.5)
        else:
            raise RuntimeError("the learner never decoded the mentor")
        ufrag = mentor.page.evaluate(UFRAG_JS)
        for loss in losses:
            relay.impair(ufrag=ufrag, up=Impairment(loss=loss / 100, delay=delay), down=Impairment(delay=delay))
            time.sleep(3)  # the link changed: encoders and estimators settle
            before = relay.counts(ufrag)
            audio = audio_window(learner, mentor.peer_id, seconds)
            video = video_window(learner, mentor.peer_id, seconds, publisher=mentor)
            after = relay.counts(ufrag)
            up = {k: after["up"][k] - before["up"][k] for k in after["up"]}
            points.append(
                {
                    "red": red,
                    "loss_pct": loss,
                    "uplink_dropped_pct": round(100 * up["dropped"] / up["received"], 2) if up["received"] else None,
                    "audio": audio,
                    "video": video,
                }
            )
            print(json.dumps(points[-1]), flush=True)
    finally:
        for p in people:
            p.close()
        server.stop()
        relay.close()
    return points


def plot(points: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for red, style in ((True, "o-"), (False, "s--")):
        mine = [p for p in points if p["red"] is red]
        xs = [p["loss_pct"] for p in mine]
        ax1.plot(
            xs, [p["audio"]["concealed_not_silent_pct"] for p in mine], style, label=f"RED {'on' if red else 'off'}"
        )
        ax2.plot(xs, [p["video"]["fps"] for p in mine], style, label=f"RED {'on' if red else 'off'} server")
    ax1.set_xlabel("mentor uplink loss (%), 80 ms RTT")
    ax1.set_ylabel("learner's audio concealed (%)")
    ax1.legend()
    ax1.grid(alpha=0.3)
    ax2.set_xlabel("mentor uplink loss (%), 80 ms RTT")
    ax2.set_ylabel("learner's video of the mentor (fps)")
    ax2.legend()
    ax2.grid(alpha=0.3)
    fig.suptitle("Loss sweep through the impairment relay (real Chromium, shared 2-core machine)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--loss", default="0,5,10,20", help="comma-separated uplink loss percentages")
    ap.add_argument("--seconds", type=float, default=10.0, help="measured per loss level (audio, then video)")
    ap.add_argument("--delay-ms", type=float, default=40.0, help="one-way delay each direction (RTT = 2x)")
    ap.add_argument("--red", choices=["both", "on", "off"], default="both")
    args = ap.parse_args()
    losses = [float(x) for x in args.loss.split(",") if x.strip()]
    modes = {"both": [True, False], "on": [True], "off": [False]}[args.red]
    from playwright.sync_api import sync_playwright

    wav = speech_like_wav(Path(tempfile.mkdtemp(prefix="loss-sweep-audio-")) / "voice.wav")
    points: list[dict[str, Any]] = []
    with sync_playwright() as pw:
        for red in modes:
            points += sweep(pw, red=red, losses=losses, seconds=args.seconds, delay=args.delay_ms / 1000, wav=wav)
    report = {
        "benchmark": "loss_sweep",
        "command": command_line(),
        "machine": machine(),
        "rtt_ms": 2 * args.delay_ms,
        "points": points,
    }
    path = write_report("loss_sweep", report)
    plot(points, FIGURE)
    summary = [
        {
            "red": p["red"],
            "loss_pct": p["loss_pct"],
            "audio_concealed_pct": p["audio"]["concealed_not_silent_pct"],
            "video_fps": p["video"]["fps"],
            "video_longest_gap_s": p["video"]["longest_gap_s"],
        }
        for p in points
    ]
    print(json.dumps({"summary": summary, "report": str(path), "figure": str(FIGURE)}, indent=2))


if __name__ == "__main__":
    main()
