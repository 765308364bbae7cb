"""Live rooms: the room token a participant enters with."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel


class RoomTokenOut(BaseModel):
    """The socket's URL and what the client needs to connect. ``token`` (and ``?token=`` in
    ``signaling_url``) only for clients that authenticate with a bearer token: pages signed in
    by cookie get it as the HttpOnly ``pl_room`` cookie alone."""

    token: str | None = None
    signaling_url: str
    ice_servers: list[dict[str, Any]]
    role: str
    expires_at: datetime
