"""ParticipantInfo: who is joining a room, as the application decided.

The engine knows no users: the application authenticates, then hands this to
``serve_participant``; the engine echoes ``app_data`` back in observer events
and shows ``public_user()`` to the other participants.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ParticipantInfo:
    """Who is joining, as the application decided (the engine knows no users)."""

    user_key: str
    display_name: str = ""
    role: str = "learner"
    #: opaque to the engine; returned in observer events
    app_data: dict[str, Any] = field(default_factory=dict)
    #: shown to the other participants in the ``user`` object
    public: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.user_key, str) or not self.user_key:
            raise TypeError("user_key must be a non-empty string")

    def public_user(self) -> dict[str, Any]:
        return {**self.public, "key": self.user_key, "display_name": self.display_name, "role": self.role}
