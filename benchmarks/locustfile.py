"""Locust scenario for PeerLearn: learners sign in, browse, open details, read notifications,
book seats, and keep the realtime socket (/ws) open — the mix of ``api_load.py``.

    peerlearn demo && peerlearn serve                     # demo learners, password peerlearn123
    locust -f benchmarks/locustfile.py --host http://127.0.0.1:8080 \\
        --headless -u 200 -r 10 -t 60s --csv benchmarks/results/locust

The server needs ``PEERLEARN_AUTH_RATE_LIMIT`` raised (many logins from one address)
and, for bookings by the demo learners, nothing else (they are verified). A 409 on
booking (``sold_out`` / ``already_booked``) is a normal answer and counts as a success.
Each user waits 1-3 s between actions (``wait_time``), like ``api_load.py --think 2``.
"""

from __future__ import annotations

import itertools
import json
import random
import time
from typing import Any

import gevent
import websocket
from locust import HttpUser, between, events, task

DOMAINS = ["Programming", "Data Science", "Design", "Languages", "Business"]
LEARNERS = [
    n.lower().replace(" ", ".") + "@peerlearn.local"
    for n in (
        "Liam Park",
        "Olivia Chen",
        "Noah Silva",
        "Emma Rossi",
        "Ava Novak",
        "Lucas Meyer",
        "Mia Kim",
        "Ethan Haddad",
        "Sofia Costa",
        "Mason Wright",
        "Isla Brown",
        "Leo Garcia",
        "Zoe Martin",
        "Kai Tanaka",
        "Nora Jensen",
        "Omar Aziz",
        "Lena Weber",
        "Ivan Petrov",
        "Ana Lima",
        "Sam Okafor",
    )
]
PASSWORD = "peerlearn123"
_next_learner = itertools.count()


def _fire(name: str, started: float | None, length: int = 0, exc: Exception | None = None) -> None:
    """Report a socket event to Locust: a connect with its time; a pushed message (no request,
    so no response time: ``started`` None) only counted."""
    elapsed = (time.perf_counter() - started) * 1000 if started is not None else 0.0
    events.request.fire(
        request_type="WS", name=name, response_time=elapsed, response_length=length, exception=exc, context={}
    )


class Learner(HttpUser):
    """A signed-in demo learner with the realtime socket open."""

    wait_time = between(1, 3)

    def on_start(self) -> None:
        email = LEARNERS[next(_next_learner) % len(LEARNERS)]
        resp = self.client.post("/api/auth/login", json={"email": email, "password": PASSWORD}, name="/api/auth/login")
        resp.raise_for_status()
        self.token = resp.json()["access_token"]
        self.client.headers["Authorization"] = f"Bearer {self.token}"
        page = self.client.get("/api/sessions", params={"page_size": 100}, name="/api/sessions").json()
        self.session_ids = [s["id"] for s in page["items"]] or [1]
        self.ws: websocket.WebSocket | None = None
        self.reader = gevent.spawn(self._realtime)

    def on_stop(self) -> None:
        self.reader.kill()
        if self.ws is not None:
            self.ws.close()

    def _realtime(self) -> None:
        """Hold /ws open and count what the server pushes (seats, notifications)."""
        url = self.host.replace("http", "ws", 1) + f"/ws?token={self.token}"
        started = time.perf_counter()
        try:
            self.ws = websocket.create_connection(url, timeout=30)
        except Exception as exc:  # noqa: BLE001 - reported to Locust as a failure
            _fire("/ws connect", started, exc=exc)
            return
        _fire("/ws connect", started)
        while True:
            try:
                message = self.ws.recv()
            except websocket.WebSocketTimeoutException:
                continue
            except Exception:  # noqa: BLE001 - closed: the user is stopping
                return
            kind = json.loads(message).get("type", "?") if message else "?"
            _fire(f"/ws message {kind}", None, len(message or ""))

    @task(45)
    def browse(self) -> None:
        params: dict[str, Any] = {"page_size": 20}
        if random.random() < 0.6:
            params["domain"] = random.choice(DOMAINS)
        if random.random() < 0.3:
            params["max_price"] = random.choice([2000, 4000, 10000])
        if random.random() < 0.2:
            params["q"] = random.choice(["python", "design", "sql", "french"])
        self.client.get("/api/sessions", params=params, name="/api/sessions")

    @task(30)
    def detail(self) -> None:
        self.client.get(f"/api/sessions/{random.choice(self.session_ids)}", name="/api/sessions/{id}")

    @task(15)
    def notifications(self) -> None:
        self.client.get("/api/notifications", name="/api/notifications")

    @task(10)
    def book(self) -> None:
        with self.client.post(
            "/api/bookings/create",
            json={"session_id": random.choice(self.session_ids)},
            name="/api/bookings/create",
            catch_response=True,
        ) as resp:
            if resp.status_code == 409:
                resp.success()  # sold out / already booked: the API said no, correctly
