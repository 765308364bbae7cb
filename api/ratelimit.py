"""Fixed-window rate limits: in memory for one process, Redis when shared."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from api.broker import RedisBroker

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: int


class RateLimiter(Protocol):
    async def hit(self, key: str, limit: int, window_seconds: int) -> Verdict: ...

    async def reset(self, key: str) -> None: ...

    async def fail(self, key: str, ttl_seconds: int) -> int:
        """Count one more consecutive failure under ``key``; returns the count."""
        ...

    async def failures(self, key: str) -> tuple[int, float]:
        """(consecutive failures, time of the last one) under ``key``; (0, 0.0) when none."""
        ...


class MemoryRateLimiter:
    """Counts per (key, window) in this process."""

    def __init__(self) -> None:
        self._counts: dict[str, tuple[int, int]] = {}
        self._failures: dict[str, tuple[int, float]] = {}

    async def hit(self, key: str, limit: int, window_seconds: int) -> Verdict:
        now = time.time()
        window = int(now // window_seconds)
        start, count = self._counts.get(key, (window, 0))
        if start != window:
            count = 0
        count += 1
        self._counts[key] = (window, count)
        if len(self._counts) > 100_000:  # bound memory under a flood of distinct keys
            self._counts = {k: v for k, v in self._counts.items() if v[0] == window}
        retry = math.ceil((window + 1) * window_seconds - now)
        return Verdict(count <= limit, max(1, retry))

    async def reset(self, key: str) -> None:
        self._counts.pop(key, None)
        self._failures.pop(key, None)

    async def fail(self, key: str, ttl_seconds: int) -> int:
        now = time.time()
        count, last = self._failures.get(key, (0, 0.0))
        count = 1 if now - last > ttl_seconds else count + 1
        self._failures[key] = (count, now)
        if len(self._failures) > 100_000:  # bound memory: forget the oldest half
            keep = sorted(self._failures.items(), key=lambda kv: kv[1][1])[50_000:]
            self._failures = dict(keep)
        return count

    async def failures(self, key: str) -> tuple[int, float]:
        return self._failures.get(key, (0, 0.0))


class RedisRateLimiter:
    """The same windows kept in Redis, so every process shares them.

    While Redis is unreachable or hung the limits hold per process (a local fallback):
    logins keep working and are still limited, just not shared. Calls go through the
    broker's :meth:`~api.broker.RedisBroker.call`, so they are not even tried while Redis
    misses its heartbeats, and never wait longer than its short timeout.
    """

    def __init__(self, broker: "RedisBroker", prefix: str = "pl:rl:") -> None:
        self._broker = broker
        self._redis = broker.redis
        self._prefix = prefix
        self._fallback = MemoryRateLimiter()

    async def hit(self, key: str, limit: int, window_seconds: int) -> Verdict:
        try:
            return await self._hit_redis(key, limit, window_seconds)
        except Exception as exc:  # noqa: BLE001 - Redis down must not fail logins
            log.info("rate limiter: redis unavailable (%r), limiting locally", exc)
            return await self._fallback.hit(key, limit, window_seconds)

    async def _hit_redis(self, key: str, limit: int, window_seconds: int) -> Verdict:
        now = time.time()
        window = int(now // window_seconds)
        rkey = f"{self._prefix}{key}:{window}"
        pipe = self._redis.pipeline()
        pipe.incr(rkey)
        pipe.expire(rkey, window_seconds + 1)
        count, _ = await self._broker.call(pipe.execute)
        retry = math.ceil((window + 1) * window_seconds - now)
        return Verdict(int(count) <= limit, max(1, retry))

    async def reset(self, key: str) -> None:
        await self._fallback.reset(key)
        try:
            await self._broker.call(lambda: self._redis.delete(f"{self._prefix}f:{key}"))
        except Exception as exc:  # noqa: BLE001
            log.info("rate limiter: redis unavailable (%r)", exc)

    async def fail(self, key: str, ttl_seconds: int) -> int:
        try:
            rkey = f"{self._prefix}f:{key}"
            pipe = self._redis.pipeline()
            pipe.hincrby(rkey, "n", 1)
            pipe.hset(rkey, "t", repr(time.time()))
            pipe.expire(rkey, ttl_seconds)
            count, _, _ = await self._broker.call(pipe.execute)
            return int(count)
        except Exception as exc:  # noqa: BLE001 - Redis down must not fail logins
            log.info("rate limiter: redis unavailable (%r), counting locally", exc)
            return await self._fallback.fail(key, ttl_seconds)

    async def failures(self, key: str) -> tuple[int, float]:
        try:
            n, t = await self._broker.call(lambda: self._redis.hmget(f"{self._prefix}f:{key}", "n", "t"))
            return (int(n), float(t)) if n is not None and t is not None else (0, 0.0)
        except Exception as exc:  # noqa: BLE001
            log.info("rate limiter: redis unavailable (%r), counting locally", exc)
            return await self._fallback.failures(key)
