"""Read caches for what many read and few change, invalidated by the writes themselves.

Every write transaction records the tables it touched (:mod:`api.db` does it
with SQLAlchemy session events, so no service has to remember); when it
commits, each cache that depends on one of those tables is emptied here at
once, before the writer's response goes out, and the other processes are told
over the broker (channel ``_cache``). A reader takes a generation ``token()``
before it reads the database and may store its result only if no write
committed meanwhile, so a result read before a commit never outlives it.

With Redis, a process that cannot confirm it hears other processes' writes
(the broker's heartbeats, api/broker.py: Redis refusing, hung, or a peer
silent) has its caches step aside (every read goes to the database) until
it can, and then they start empty. A write whose invalidation Redis did not
take is told again, as "forget everything", once Redis is back. Entries also expire after
``max_age`` seconds, which bounds what a write from outside any server
process (the CLI) can leave behind.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable, Hashable, Iterable
from typing import Any, Generic, TypeVar

log = logging.getLogger(__name__)

CHANNEL = "_cache"
ALL = "*"  # a write whose tables are unknown (raw SQL): every cache forgets
V = TypeVar("V")


def _retrieve(task: asyncio.Future[Any]) -> None:
    # Every reader may have gone away: the error was theirs to see, not the log's.
    if not task.cancelled():
        task.exception()


class ReadCache(Generic[V]):
    """One cache: values by key, valid until a table it depends on is written."""

    def __init__(
        self,
        name: str,
        tables: Iterable[str],
        *,
        max_entries: int = 4096,
        max_age: float = 60.0,
        ignores: Iterable[str] = (),
        partition: str | None = None,
    ) -> None:
        self.name = name
        self.tables = frozenset(tables)
        # "<table>.<column>": this cache is keyed by that column's value (int), so a write of
        # rows with known owners forgets only their keys.
        self.partition = partition
        # "<table>.<column>" changes this cache does not show as cached (it overlays them).
        self.ignores = frozenset(ignores)
        self.max_entries = max_entries
        self.max_age = max_age
        self.hits = 0
        self.misses = 0
        self._entries: dict[Hashable, tuple[float, V]] = {}
        self._loading: dict[Hashable, tuple[int, asyncio.Future[V]]] = {}
        self._generation = 0
        self._enabled: Callable[[], bool] = lambda: True

    def token(self) -> int:
        """Take before reading the database; hand back to :meth:`put`."""
        return self._generation

    def get(self, key: Hashable) -> V | None:
        entry = self._entries.get(key) if self._enabled() else None
        if entry is None:
            self.misses += 1
            return None
        stored_at, value = entry
        if time.monotonic() - stored_at > self.max_age:
            self._entries.pop(key, None)
            self.misses += 1
            return None
        self.hits += 1
        return value

    async def get_or_load(self, key: Hashable, load: Callable[[], Awaitable[V]]) -> V:
        """The cached value, or ``load()``'s result, kept if still valid. Concurrent misses
        on one key share one load (no stampede after an invalidation); a load that began
        before the last invalidation is not shared with readers who came after it."""
        value = self.get(key)
        if value is not None:
            return value
        pending = self._loading.get(key)
        if pending is None or pending[0] != self._generation:
            stamp = self._generation
            task = asyncio.ensure_future(self._load(key, load, stamp))
            task.add_done_callback(_retrieve)
            pending = self._loading[key] = (stamp, task)
        # Shielded: a reader that goes away does not cancel the others' load.
        return await asyncio.shield(pending[1])

    async def _load(self, key: Hashable, load: Callable[[], Awaitable[V]], stamp: int) -> V:
        try:
            value = await load()
            self.put(key, value, stamp)
            return value
        finally:
            if (pending := self._loading.get(key)) is not None and pending[0] == stamp:
                del self._loading[key]

    def put(self, key: Hashable, value: V, token: int) -> None:
        """Keep ``value`` unless a write committed since ``token`` was taken."""
        if token != self._generation or not self._enabled():
            return
        if len(self._entries) >= self.max_entries:
            self._entries.clear()  # a bound, not a policy: the hot keys come back at once
        self._entries[key] = (time.monotonic(), value)

    def invalidate(self) -> None:
        self._generation += 1
        self._entries.clear()

    def invalidate_key(self, key: Hashable) -> None:
        # The generation moves too: a load in flight (for any key) may predate the write.
        self._generation += 1
        self._entries.pop(key, None)


class ReadCaches:
    """The process's caches by name, and the invalidation they share."""

    def __init__(self) -> None:
        self._caches: dict[str, ReadCache[Any]] = {}
        self._broker: Any = None
        self._listener: asyncio.Task[None] | None = None
        self._origin = f"{os.getpid()}-{id(self)}"
        self._epoch = 0  # the broker's healthy epoch these caches were filled in
        self._unsent = False  # an invalidation Redis did not take: to be told again

    def cache(self, name: str, tables: Iterable[str], **kw: Any) -> ReadCache[Any]:
        """The cache ``name``, created on first use."""
        found = self._caches.get(name)
        if found is None:
            found = self._caches[name] = ReadCache(name, tables, **kw)
            found._enabled = self._enabled
        return found

    def stats(self) -> dict[str, dict[str, int]]:
        return {n: {"hits": c.hits, "misses": c.misses, "entries": len(c._entries)} for n, c in self._caches.items()}

    def invalidate(self, tables: Iterable[str]) -> None:
        """Forget what depends on ``tables`` (here only): names are ``<table>`` (rows added
        or removed) or ``<table>.<column>`` (rows changed in that column), with ``@<owner>``
        when the rows' partition value is known."""
        written = [(name, owner, name.partition(".")[0]) for w in set(tables) for name, _, owner in (w.partition("@"),)]
        for c in self._caches.values():
            if any(name == ALL for name, _, _ in written):
                c.invalidate()
                continue
            hits = [(table, owner) for name, owner, table in written if table in c.tables and name not in c.ignores]
            if not hits:
                continue
            owned = c.partition is not None and all(
                owner and table == c.partition.partition(".")[0] for table, owner in hits
            )
            if not owned:
                c.invalidate()
                continue
            for _, owner in hits:
                c.invalidate_key(int(owner) if owner.lstrip("-").isdigit() else owner)

    @property
    def partitions(self) -> dict[str, str]:
        """table -> column that some cache is keyed by (the write tracking reads it)."""
        return {
            c.partition.partition(".")[0]: c.partition.partition(".")[2] for c in self._caches.values() if c.partition
        }

    async def committed(self, tables: frozenset[str]) -> None:
        """A write transaction committed: forget here, then tell the other processes."""
        self.invalidate(tables)
        if self._broker is not None and hasattr(self._broker, "redis"):
            if not await self._broker.publish_remote(CHANNEL, {"origin": self._origin, "tables": sorted(tables)}):
                # Peers stop hearing our heartbeat too, so their caches step aside meanwhile.
                self._unsent = True

    async def _resend(self) -> None:
        """Redis is back: writes it did not take reach the others now, as "forget all"."""
        if self._unsent and self._broker is not None:
            self._unsent = False
            if not await self._broker.publish_remote(CHANNEL, {"origin": self._origin, "tables": [ALL]}):
                self._unsent = True

    # ---------------------------------------------------------------- broker wiring
    async def attach(self, broker: Any) -> None:
        """Hear other processes' writes (only a cross-process broker has any)."""
        self._broker = broker
        if not hasattr(broker, "redis"):
            return
        sub = await broker.subscribe({CHANNEL})
        broker.on_recovered(self._resend)
        self._listener = asyncio.create_task(self._listen(sub), name="cache-invalidation")

    async def detach(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            try:
                await self._listener
            except asyncio.CancelledError:
                pass
            self._listener = None
        self._broker = None

    async def _listen(self, sub: Any) -> None:
        try:
            async for message in sub:
                if message.get("origin") != self._origin:
                    self.invalidate(message.get("tables") or (ALL,))
        except asyncio.CancelledError:
            await sub.close()
            raise

    def _enabled(self) -> bool:
        broker = self._broker
        if broker is None:
            return True
        if not getattr(broker, "listening", True):
            return False
        epoch = getattr(broker, "epoch", 0)
        if epoch != self._epoch:  # writes may have gone unheard while it was down
            self._epoch = epoch
            self.invalidate((ALL,))
        return True
