"""The deployment the README describes, run for real: deploy/ as shipped.

Debian's nginx with ``deploy/nginx/peerlearn.conf`` (a self-signed certificate this test
makes; ports and paths substituted, nothing else) in front of ``serve --workers 2`` on
PostgreSQL + a private Redis: HTTPS over HTTP/2, a class over ``wss://`` whose participants
decode each other, cookies ``Secure``, a client's own ``X-Forwarded-For`` never taken for its
address (rate limits hold), ``/metrics`` closed behind the proxy; the systemd units pass
``systemd-analyze verify``.
"""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from benchmarks.room_client import RoomParticipant
from tests.scale.test_two_processes import PASSWORD, free_port, register, scheduled_session
from tests.scale.test_worker_death import Machine

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
RATE_LIMIT = 5
# An address of the loopback network that is not the trusted proxy: "the client".
CLIENT_ADDRESS = "127.0.0.5"


class Edge:
    """nginx in the foreground with the shipped site, on free ports, files in ``tmp``."""

    def __init__(self, tmp: Path, upstream_port: int) -> None:
        self.tmp = tmp
        self.https_port, self.http_port = free_port(), free_port()
        self.url = f"https://127.0.0.1:{self.https_port}"
        self.cert, self.key = tmp / "cert.pem", tmp / "key.pem"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1"]
            + ["-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(self.key), "-out", str(self.cert)],
            check=True,
            capture_output=True,
        )
        site = (DEPLOY / "nginx" / "peerlearn.conf").read_text()
        for shipped, here in (
            ("server 127.0.0.1:8080;", f"server 127.0.0.1:{upstream_port};"),
            ("listen 443 ssl http2;", f"listen 127.0.0.1:{self.https_port} ssl http2;"),
            ("listen [::]:443 ssl http2;", ""),
            ("listen 80;", f"listen 127.0.0.1:{self.http_port};"),
            ("listen [::]:80;", ""),
            ("/etc/letsencrypt/live/peerlearn.example.com/fullchain.pem", str(self.cert)),
            ("/etc/letsencrypt/live/peerlearn.example.com/privkey.pem", str(self.key)),
        ):
            assert shipped in site, f"deploy/nginx/peerlearn.conf no longer has {shipped!r}"
            site = site.replace(shipped, here)
        (tmp / "site.conf").write_text(site)
        temp = "".join(
            f"{kind}_temp_path {tmp}/{kind};\n" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        (tmp / "nginx.conf").write_text(
            f"daemon off;\nworker_processes 1;\npid {tmp}/nginx.pid;\nerror_log {tmp}/error.log warn;\n"
            f"events {{}}\nhttp {{\naccess_log {tmp}/access.log;\n{temp}include {tmp}/site.conf;\n}}\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        exe = shutil.which("nginx") or "/usr/sbin/nginx"
        if not Path(exe).exists():
            pytest.fail("Debian's nginx is required (apt-get install nginx; make system-deps)")
        conf = ["-p", str(self.tmp), "-e", str(self.tmp / "error.log"), "-c", str(self.tmp / "nginx.conf")]
        subprocess.run([exe, "-t", *conf], check=True, capture_output=True)
        self.proc = subprocess.Popen([exe, *conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            if subprocess.run(["curl", "-sk", "-o", "/dev/null", self.url + "/healthz"]).returncode == 0:
                return
            time.sleep(0.1)
        raise AssertionError((self.tmp / "error.log").read_text())

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Machine, Edge]]:
    tmp = tmp_path_factory.mktemp("deploy")
    port = free_port()
    edge = Edge(tmp, port)
    machine = Machine(
        tmp,
        {
            "PEERLEARN_TRUSTED_PROXIES": "127.0.0.1",
            "PEERLEARN_PUBLIC_URL": edge.url,
            "PEERLEARN_AUTH_RATE_LIMIT": str(RATE_LIMIT),
        },
    )
    machine.port, machine.url = port, f"http://127.0.0.1:{port}"
    try:
        machine.start()
        edge.start()
        yield machine, edge
    finally:
        edge.stop()
        machine.stop()


def client_ssl(edge: Edge) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(edge.cert))


def test_https_is_http2_and_plain_http_redirects(deployment: tuple[Machine, Edge]) -> None:
    _, edge = deployment
    out = subprocess.run(
        ["curl", "-s", "--cacert", str(edge.cert), "--http2", "-o", "/dev/null", "-w", "%{http_version} %{http_code}"]
        + [edge.url + "/healthz"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout == "2 200"
    out = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", f"http://127.0.0.1:{edge.http_port}/"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.startswith("301 https://")


async def test_a_class_runs_over_https_and_wss_with_secure_cookies(deployment: tuple[Machine, Edge]) -> None:
    _, edge = deployment
    connector = aiohttp.TCPConnector(ssl=client_ssl(edge))
    async with aiohttp.ClientSession(connector=connector) as http:
        mentor = await register(http, edge.url, "mentor", "dm", domains=["Programming"])
        learner = await register(http, edge.url, "learner", "dl")
        # The login cookie is Secure: the app learned https from the trusted proxy.
        async with http.post(
            edge.url + "/api/auth/login", json={"email": f"x-{uuid.uuid4().hex}@example.com", "password": PASSWORD}
        ) as resp:
            assert resp.status == 401
        status, me = await learner.call("GET", "/api/users/me")
        assert status == 200
        async with http.post(edge.url + "/api/auth/login", json={"email": me["email"], "password": PASSWORD}) as resp:
            assert resp.status == 200
            cookies = resp.headers.getall("Set-Cookie")
        http.cookie_jar.clear()
        assert cookies and all("Secure" in c for c in cookies), cookies

        sid = await scheduled_session(mentor, 5)
        assert (await learner.call("POST", "/api/bookings/create", json={"session_id": sid}))[0] == 201
        _, mtok = await mentor.call("POST", f"/api/rooms/{sid}/token")
        _, ltok = await learner.call("POST", f"/api/rooms/{sid}/token")
        wss = edge.url.replace("https://", "wss://")
        m = RoomParticipant(await http.ws_connect(f"{wss}/ws/room/{sid}?token={mtok['token']}"))
        lp: RoomParticipant | None = None
        try:
            await m.join("mentor")  # the class is live: the learner's worker may now let them in
            lp = RoomParticipant(await http.ws_connect(f"{wss}/ws/room/{sid}?token={ltok['token']}"))
            await lp.join("learner")
            for me_, other in ((m, lp), (lp, m)):
                assert other.peer_id is not None
                await me_.wait_frames(other.peer_id, "video", 5)
        finally:
            await asyncio.gather(m.close(), *([lp.close()] if lp else []), return_exceptions=True)


async def test_a_forged_forwarded_for_does_not_escape_rate_limits_and_metrics_stay_closed(
    deployment: tuple[Machine, Edge],
) -> None:
    machine, edge = deployment
    connector = aiohttp.TCPConnector(ssl=client_ssl(edge), local_addr=(CLIENT_ADDRESS, 0))
    statuses = []
    victim = f"somebody-{uuid.uuid4().hex}@example.com"
    async with aiohttp.ClientSession(connector=connector) as http:
        for i in range(RATE_LIMIT + 2):
            # Guessing one account's password with a new "address" each time: believed, the
            # header would give every guess a fresh (address, account) budget.
            async with http.post(
                edge.url + "/api/auth/login",
                json={"email": victim, "password": f"Wrong-passw0rd-{i}"},
                headers={"X-Forwarded-For": f"198.51.100.{i + 1}"},
            ) as resp:
                statuses.append(resp.status)
        assert 429 in statuses, statuses
        async with http.get(edge.url + "/metrics") as resp:
            assert resp.status == 403
    # The app itself is not fooled by the header either when reached directly.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(CLIENT_ADDRESS, 0))) as http:
        async with http.get(machine.url + "/metrics", headers={"X-Forwarded-For": "127.0.0.1"}) as resp:
            assert resp.status == 403


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_the_systemd_units_verify(tmp_path: Path) -> None:
    venv_peerlearn = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "peerlearn"
    units = []
    for unit in sorted((DEPLOY / "systemd").glob("*.service")):
        text = unit.read_text()
        if venv_peerlearn.exists():  # the shipped path is the install's (/opt/peerlearn): checked here on ours
            text = text.replace("/opt/peerlearn/.venv/bin/peerlearn", str(venv_peerlearn))
        (tmp_path / unit.name).write_text(text)
        units.append(str(tmp_path / unit.name))
    assert len(units) == 2
    out = subprocess.run(["systemd-analyze", "verify", *units], capture_output=True, text=True)
    # A bad value is only a warning (exit 0): any output at all fails the test.
    assert out.returncode == 0 and out.stderr.strip() == "" and out.stdout.strip() == "", out
