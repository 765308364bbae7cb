"""Settings from the environment (PEERLEARN_*), with documented defaults.

Every field maps to an environment variable named PEERLEARN_<FIELD> in upper
case, e.g. ``PEERLEARN_DATABASE_URL``; dict fields take a JSON object. Secrets
that are not given are generated once into the data directory and never printed.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any


def _parse(value: str, kind: Any) -> Any:
    if kind in (bool, "bool"):
        return value.strip().lower() in ("1", "true", "yes", "on")
    if kind in (int, "int"):
        return int(value)
    if kind in (float, "float"):
        return float(value)
    if isinstance(kind, str) and kind.startswith("dict"):
        parsed = json.loads(value)
        if not isinstance(parsed, dict):
            raise ValueError(f"expected a JSON object, not {value!r}")
        return parsed
    return value


# The recommender's offline evaluation falls back to a synthetic marketplace of this size
# when the live data has too few learners to measure anything (api/recommender/training.py).
DEFAULT_SYNTHETIC_EVAL: dict[str, Any] = {"n_users": 1000, "n_items": 300, "days": 40.0, "seed": 11}


@dataclass(frozen=True)
class Settings:
    """Process configuration. Build with :meth:`from_env`; tests use ``replace``."""

    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path("./data")
    # Empty means the SQLite file <data_dir>/peerlearn.db.
    database_url: str = ""
    # PostgreSQL: longest wait for a pooled connection or a new one (a server restarting or
    # not answering); past it the request gets 503 with Retry-After instead of waiting on.
    database_timeout_seconds: float = 10.0
    # Empty means the in-memory broker (one process).
    redis_url: str = ""
    # Longest wait on any one Redis call; Redis is taken as down (caches step aside, fan-out
    # and rate limits go local) when its heartbeat has not come back for redis_stale_seconds,
    # and a peer process whose heartbeats stopped is waited for this long before it is
    # taken as gone (until then its writes might go unheard: caches stay aside).
    redis_timeout_seconds: float = 1.0
    redis_stale_seconds: float = 2.0
    redis_peer_forget_seconds: float = 30.0
    # Empty means e-mails are written as .eml files to <data_dir>/outbox.
    smtp_url: str = ""
    mail_from: str = "PeerLearn <no-reply@peerlearn.local>"
    public_url: str = "http://127.0.0.1:8080"
    jwt_secret: str = ""
    jwt_ttl_seconds: int = 8 * 3600
    turn_secret: str = ""
    # Comma separated turn: URLs handed to clients with ephemeral credentials.
    turn_urls: str = ""
    stun_urls: str = ""
    # Requests larger than this are refused with 413 (avatars included).
    max_body_bytes: int = 5 * 1024 * 1024
    max_avatar_bytes: int = 4 * 1024 * 1024
    # Rate limits on auth endpoints: attempts per window per IP and per account.
    auth_rate_limit: int = 10
    auth_rate_window_seconds: int = 60
    secure_cookies: bool = False
    # Reverse proxies (addresses or networks, comma separated) whose X-Forwarded-For/-Proto are
    # believed: client IPs for rate limits, https for Secure cookies. Empty: believe nobody.
    trusted_proxies: str = ""
    # Bearer token that opens /metrics to scrapers; without one, /metrics answers only direct
    # (unproxied) requests from loopback and requests on the internal listener.
    metrics_token: str = ""
    # Avatar uploads per user per hour (each upload decodes an image).
    avatar_rate_limit: int = 10
    # Custom session requests per learner: a burst per window and a daily allowance, and how
    # many mentors of a domain one open-to-all request notifies (all of them still see it listed).
    request_rate_burst: int = 5
    request_rate_burst_window_seconds: int = 600
    request_rate_daily: int = 20
    request_max_notified_mentors: int = 25
    # Booking (paying), publishing and payouts need a confirmed e-mail address. Only load
    # generators that register throwaway accounts turn this off.
    require_verified_email: bool = True
    # Messages (api/services/messages.py): per sender, a burst per minute and a number per day;
    # e-mail for messages unread this many minutes, at most one per conversation per interval.
    message_burst_limit: int = 10
    message_daily_limit: int = 200
    message_email_after_minutes: int = 30
    message_email_every_minutes: int = 60
    # Class materials (api/services/materials.py): per file and per session.
    max_material_bytes: int = 20 * 1024 * 1024
    max_session_material_bytes: int = 100 * 1024 * 1024
    # SFU network placement (aioice has none of these by default).
    rtc_port_min: int = 0
    rtc_port_max: int = 0
    rtc_public_ip: str = ""
    rtc_interfaces: str = ""
    # Port clients are told to send media to (0: the bound one): an impairment relay or a port
    # forward in front of a single RTC port (rtc_port_min == rtc_port_max).
    rtc_announced_port: int = 0
    # Opus RED with browsers that offer it, and DTX asked of publishers (docs/media-quality.md).
    rtc_audio_red: bool = True
    rtc_opus_dtx: bool = True
    # Remote ICE candidates at loopback/private/link-local addresses (and mDNS names): "allow",
    # "deny", or "auto" = allow only when public_url is a loopback address (a development
    # server the browser shares a machine with, e.g. `make run`), deny for a deployment.
    rtc_private_candidates: str = "auto"
    # Address other processes reach this one at (room signaling proxied to its owner).
    internal_host: str = "127.0.0.1"
    # This process among `serve --workers N`'s (set by the parent for each worker it starts): the
    # worker's slice of the RTC port range.
    worker_index: int = 0
    workers: int = 1
    room_grace_minutes: int = 30
    scheduler_interval_seconds: float = 30.0
    scheduler_enabled: bool = True
    recordings_dir: Path | None = None
    log_level: str = "INFO"
    access_log: bool = True
    # "uvloop" (when installed) or "asyncio": the event loop `peerlearn serve` runs on.
    event_loop: str = "uvloop"
    environment: str = "development"
    # Bring the database schema up to date at start-up (`peerlearn serve --no-migrate` and the
    # tests, whose template database is migrated once, turn it off).
    migrate: bool = True
    # Origins (comma separated) whose pages may open cookie-authenticated WebSockets, besides
    # public_url and the request's own host.
    allowed_origins: str = ""
    # Realtime sockets (GET /ws): protocol heartbeat, application ping, and how long one send
    # may take before the client is dropped as too slow.
    ws_heartbeat_seconds: float = 30.0
    ws_ping_seconds: float = 25.0
    ws_send_timeout_seconds: float = 10.0
    # A room participant whose seat or login session ended leaves the room at once (the change's
    # broker message wakes the check); this periodic check covers a message lost with the broker.
    room_revocation_check_seconds: float = 30.0
    # Recordings older than the platform's retention period are deleted, checked this often.
    recording_retention: bool = True
    recording_retention_interval_seconds: float = 3600.0
    # Capture: dumps flushed / fsynced this often; capture stops when the disk has less free.
    recording_flush_interval_seconds: float = 0.25
    recording_sync_interval_seconds: float = 2.0
    recording_min_free_bytes: int = 64 * 1024 * 1024
    # A capture whose worker died is continued when its room opens again (on any worker) within
    # this long of its last write; after that it is finalized as it is. Checked this often.
    recording_resume_grace_seconds: float = 20.0
    recording_recovery_interval_seconds: float = 10.0
    # Recommender: hyper-parameters (JSON object of api.recommender.model.Params fields), the
    # learners sampled by the offline evaluation (0: all), its synthetic fallback (JSON object
    # of api.recommender.synthetic.generate arguments; {} for none), how long a first request
    # waits for the first model, and how often the in-memory catalogue syncs.
    recsys_params: dict[str, Any] = field(default_factory=dict)
    recsys_eval_max_users: int = 3000
    recsys_synthetic_eval: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_SYNTHETIC_EVAL))
    recsys_first_request_wait_seconds: float = 2.0
    recsys_sync_seconds: float = 2.0
    # Retraining (with the scheduler enabled): a new version when the newest is older than the
    # interval, checked this often, the first check this long after start-up.
    recsys_train_interval_seconds: float = 86400.0
    recsys_schedule_check_seconds: float = 600.0
    recsys_schedule_delay_seconds: float = 5.0

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: Any) -> "Settings":
        env = dict(os.environ if env is None else env)
        values: dict[str, Any] = {}
        for f in fields(cls):
            key = "PEERLEARN_" + f.name.upper()
            if key in env and env[key] != "":
                raw = env[key]
                if f.name in ("data_dir", "recordings_dir"):
                    values[f.name] = Path(raw)
                else:
                    values[f.name] = _parse(raw, f.type)
        values.update({k: v for k, v in overrides.items() if v is not None})
        if "data_dir" in values:
            values["data_dir"] = Path(values["data_dir"])
        return cls(**values)

    # Derived locations -------------------------------------------------
    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "peerlearn.db"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.sqlite_path.resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.effective_database_url.startswith("sqlite")

    @property
    def uploads_dir(self) -> Path:
        return self.data_dir / "uploads"

    @property
    def outbox_dir(self) -> Path:
        return self.data_dir / "outbox"

    @property
    def effective_recordings_dir(self) -> Path:
        return self.recordings_dir or self.data_dir / "recordings"

    def prepared(self) -> "Settings":
        """Create the data directory and fill generated dev secrets (kept in the data dir)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        for sub in (self.uploads_dir, self.outbox_dir, self.effective_recordings_dir):
            sub.mkdir(parents=True, exist_ok=True)
        changes: dict[str, Any] = {}
        if not self.jwt_secret:
            changes["jwt_secret"] = _dev_secret(self.data_dir / "jwt.secret")
        if not self.turn_secret:
            changes["turn_secret"] = _dev_secret(self.data_dir / "turn.secret")
        return replace(self, **changes) if changes else self


def _dev_secret(path: Path) -> str:
    """Read or create a random secret file readable by its owner only."""
    if path.exists():
        return path.read_text().strip()
    value = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
    return value
