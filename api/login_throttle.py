"""Login throttling that cannot be turned against somebody else.

A limit per account alone lets anyone lock a chosen user out by failing ten
times with their e-mail. So every budget here includes the caller's address:

- per (IP, account): ``auth_rate_limit`` attempts per window, and after
  ``FREE_FAILURES`` consecutive failures a growing delay (2 s, 4 s, 8 s ...
  up to ``MAX_DELAY``) before the next attempt; a success clears it;
- per IP, across accounts: ``IP_FACTOR`` times that (password spraying).

The real owner, from their own address, is never slowed by a stranger's
failures. Unknown and known e-mails are throttled the same way. Counters live
in the app's rate limiter (Redis when configured, so shared by every process).
"""

from __future__ import annotations

import math
import time

from api.errors import ApiError
from api.ratelimit import RateLimiter

FREE_FAILURES = 3
MAX_DELAY = 15 * 60
IP_FACTOR = 5


def delay_after(failures: int) -> int:
    """Seconds to wait after ``failures`` consecutive failures (0 while still free)."""
    if failures < FREE_FAILURES:
        return 0
    return int(min(MAX_DELAY, 2 ** (failures - FREE_FAILURES + 1)))


def _too_many(retry_after: int) -> ApiError:
    return ApiError(
        429,
        "rate_limited",
        "Too many attempts; wait a moment and try again.",
        headers={"Retry-After": str(max(1, retry_after))},
    )


class LoginThrottle:
    """Checks and records login attempts of one (IP, e-mail) pair."""

    def __init__(self, limiter: RateLimiter, *, limit: int, window_seconds: int) -> None:
        self.limiter = limiter
        self.limit = limit
        self.window = window_seconds

    @staticmethod
    def _pair(ip: str, email: str) -> str:
        return f"login:ipacct:{ip}:{email.strip().lower()}"

    async def check(self, ip: str, email: str) -> None:
        """429 with Retry-After while this pair waits out its delay or a budget is spent."""
        pair = self._pair(ip, email)
        failures, last = await self.limiter.failures(pair)
        wait = last + delay_after(failures) - time.time()
        if wait > 0:
            raise _too_many(math.ceil(wait))
        for key, limit in ((f"login:ip:{ip}", self.limit * IP_FACTOR), (pair, self.limit)):
            verdict = await self.limiter.hit(key, limit, self.window)
            if not verdict.allowed:
                raise _too_many(verdict.retry_after)

    async def failed(self, ip: str, email: str) -> None:
        await self.limiter.fail(self._pair(ip, email), 2 * MAX_DELAY)

    async def succeeded(self, ip: str, email: str) -> None:
        await self.limiter.reset(self._pair(ip, email))
