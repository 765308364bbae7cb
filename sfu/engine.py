"""Engine: the process-wide owner of routers (one per live room)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Optional

from .config import SfuConfig
from .errors import InvalidStateError
from .heap import pin_mmap_threshold
from .transport.ice import IceSockets
from .room.router import Router

logger = logging.getLogger(__name__)


@dataclass
class EngineStats:
    rooms: int
    peers: int
    producers: int
    consumers: int
    packets_received: int
    packets_forwarded: int
    retransmitted: int


class Engine:
    """Creates and tracks routers; closing it closes every room."""

    def __init__(self, config: Optional[SfuConfig] = None) -> None:
        self.config = config or SfuConfig()
        self.ice = IceSockets(self.config)
        self.closed = False
        self._routers: dict[str, Router] = {}
        # big short-lived read buffers go to their own mappings, not the packets' heap (sfu/heap.py)
        pin_mmap_threshold()

    def create_router(self, room_id: str, *, max_peers: int, app_data: Optional[dict[str, Any]] = None) -> Router:
        """A new router for ``room_id``; InvalidStateError if one is open already."""
        if self.closed:
            raise InvalidStateError("engine is closed")
        if not isinstance(room_id, str) or not room_id:
            raise TypeError("room_id must be a non-empty string")
        if room_id in self._routers:
            raise InvalidStateError(f"room {room_id} already has a router")
        router = Router(
            room_id=room_id,
            max_peers=max_peers,
            app_data=dict(app_data or {}),
            config=self.config,
            ice=self.ice,
            on_closed=self._router_closed,
        )
        self._routers[room_id] = router
        return router

    def get_router(self, room_id: str) -> Optional[Router]:
        return self._routers.get(room_id)

    def get_or_create_router(
        self, room_id: str, *, max_peers: int, app_data: Optional[dict[str, Any]] = None
    ) -> Router:
        return self._routers.get(room_id) or self.create_router(room_id, max_peers=max_peers, app_data=app_data)

    @property
    def routers(self) -> list[Router]:
        return list(self._routers.values())

    def stats(self) -> EngineStats:
        per_router = [r.stats() for r in self._routers.values()]
        return EngineStats(
            rooms=len(per_router),
            peers=sum(s.peers for s in per_router),
            producers=sum(s.producers for s in per_router),
            consumers=sum(s.consumers for s in per_router),
            packets_received=sum(s.packets_received for s in per_router),
            packets_forwarded=sum(s.packets_forwarded for s in per_router),
            retransmitted=sum(s.retransmitted for s in per_router),
        )

    async def close(self) -> None:
        """Idempotent: close every router and the shared sockets."""
        if self.closed:
            return
        self.closed = True
        for router in list(self._routers.values()):
            await router.close("shutdown")
        await self.ice.close()

    def _router_closed(self, router: Router) -> None:
        if self._routers.get(router.room_id) is router:
            del self._routers[router.room_id]
