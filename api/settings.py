"""Settings from the environment (PEERLEARN_*), with documented defaults.

Every field maps to an environment variable named PEERLEARN_<FIELD> in upper
case, e.g. ``PEERLEARN_DATABASE_URL``. Secrets that are not given are
generated once into the data directory and never printed.
"""

from __future__ import annotations

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
    return value


@dataclass(frozen=True)
class Settings:
    """Process configuration. Build with :meth:`from_env`; tests use ``replace``."""

    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path("./data")
    # Empty means the SQLite file <data_dir>/peerlearn.db.
    database_url: str = ""
    # Empty means the in-memory broker (one process).
    redis_url: str = ""
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
    # Booking (paying), publishing and payouts need a confirmed e-mail address. Only load
    # generators that register throwaway accounts turn this off.
    require_verified_email: bool = True
    # SFU network placement (aioice has none of these by default).
    rtc_port_min: int = 0
    rtc_port_max: int = 0
    rtc_public_ip: str = ""
    rtc_interfaces: str = ""
    # Remote ICE candidates at loopback/private/link-local addresses (and mDNS names): "allow",
    # "deny", or "auto" = allow only when public_url is a loopback address (a development
    # server the browser shares a machine with, e.g. `make run`), deny for a deployment.
    rtc_private_candidates: str = "auto"
    # Address other processes reach this one at (room signaling proxied to its owner).
    internal_host: str = "127.0.0.1"
    room_grace_minutes: int = 30
    scheduler_interval_seconds: float = 30.0
    scheduler_enabled: bool = True
    recordings_dir: Path | None = None
    log_level: str = "INFO"
    access_log: bool = True
    # "uvloop" (when installed) or "asyncio": the event loop `peerlearn serve` runs on.
    event_loop: str = "uvloop"
    environment: str = "development"
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: Any) -> "Settings":
        env = dict(os.environ if env is None else env)
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name == "extra":
                continue
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
