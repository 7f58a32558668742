"""Rate limits with the `limits` library: a sliding-window counter per principal (or per client IP for public
API routes). In-memory storage by default (per process); a Redis URL shares the counts between replicas."""

from __future__ import annotations

import math
import time

from limits import parse
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.storage import storage_from_string

from gateway.problems import RateLimited
from gateway.settings import Settings
from services.logging import get_logger

log = get_logger(__name__)


class RateLimits:
    def __init__(self, settings: Settings) -> None:
        url = settings.rate_limit_storage_url
        if not url.startswith("async+"):
            url = "async+" + url
        self.limiter = SlidingWindowCounterRateLimiter(storage_from_string(url))
        self.per_principal = parse(settings.rate_limit_principal)
        self.per_ip = parse(settings.rate_limit_anonymous)
        self._storage_failing = False

    async def check_principal(self, key: str) -> None:
        await self._hit(self.per_principal, "principal", key)

    async def check_ip(self, address: str) -> None:
        await self._hit(self.per_ip, "ip", address)

    async def _hit(self, item, kind: str, key: str) -> None:  # noqa: ANN001 - limits.RateLimitItem
        try:
            allowed = await self.limiter.hit(item, kind, key)
        except Exception as exc:  # noqa: BLE001 - a shared store being down must not take the API down with it
            if not self._storage_failing:
                log.warning("ratelimit.storage_unavailable", error_type=type(exc).__name__)
            self._storage_failing = True
            return
        self._storage_failing = False
        if allowed:
            return
        retry_after = 1
        try:
            stats = await self.limiter.get_window_stats(item, kind, key)
            retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        except Exception:  # noqa: BLE001
            pass
        raise RateLimited(f"Too many requests: the limit is {item}. Retry after {retry_after} s.",
                          headers={"Retry-After": str(retry_after)})
