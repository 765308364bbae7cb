"""Live rooms: the room token a participant enters with."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel


class RoomTokenOut(BaseModel):
    token: str
    signaling_url: str
    ice_servers: list[dict[str, Any]]
    role: str
    expires_at: datetime
