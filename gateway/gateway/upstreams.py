"""The three upstream services: one pooled aiohttp client each, and a circuit breaker each.

aiohttp rather than httpx: measured as a proxy client in this project, httpx.AsyncClient managed ~260-400 req/s
per worker against ~1,750 for aiohttp (issue 6); the gateway must keep at least half of direct throughput."""

from __future__ import annotations

import asyncio
import time

import aiohttp

from gateway.metrics import BREAKER_STATE
from gateway.settings import Settings
from services.logging import get_logger

log = get_logger(__name__)

CLOSED, HALF_OPEN, OPEN = 0, 1, 2
_STATE_NAMES = {CLOSED: "closed", HALF_OPEN: "half_open", OPEN: "open"}


class CircuitBreaker:
    """Opens after `threshold` consecutive failures (connection refused, reset, timeout): while open, callers
    get a fast 503 instead of queueing on a dead upstream. After `reset_seconds` one probe request is let
    through (half-open); its success closes the breaker, its failure opens it again."""

    def __init__(self, upstream: str, threshold: int, reset_seconds: float) -> None:
        self.upstream = upstream
        self.threshold = max(1, threshold)
        self.reset_seconds = reset_seconds
        self.state = CLOSED
        self.failures = 0
        self.opened_at = 0.0
        self.probe_started_at = 0.0
        self._gauge = BREAKER_STATE.labels(upstream)
        self._gauge.set(CLOSED)

    @property
    def state_name(self) -> str:
        return _STATE_NAMES[self.state]

    def allow(self) -> bool:
        if self.state == CLOSED:
            return True
        now = time.monotonic()
        if self.state == OPEN:
            if now - self.opened_at < self.reset_seconds:
                return False
            self._set(HALF_OPEN)
            self.probe_started_at = now
            return True
        # Half-open: one probe at a time; a probe that never reported (its client went away) is replaced.
        if now - self.probe_started_at >= self.reset_seconds:
            self.probe_started_at = now
            return True
        return False

    def retry_after(self) -> int:
        return max(1, int(self.opened_at + self.reset_seconds - time.monotonic() + 0.999))

    def record_success(self) -> None:
        self.failures = 0
        if self.state != CLOSED:
            self._set(CLOSED)
            log.info("circuit.closed", upstream=self.upstream)

    def record_failure(self) -> None:
        self.failures += 1
        if self.state == HALF_OPEN or (self.state == CLOSED and self.failures >= self.threshold):
            self.opened_at = time.monotonic()
            if self.state != OPEN:
                log.warning("circuit.opened", upstream=self.upstream, failures=self.failures)
            self._set(OPEN)

    def _set(self, state: int) -> None:
        self.state = state
        self._gauge.set(state)


class Upstream:
    def __init__(self, name: str, base_url: str, settings: Settings) -> None:
        self.name = name
        self.base_url = base_url
        self.breaker = CircuitBreaker(name, settings.breaker_failure_threshold, settings.breaker_reset_seconds)
        self._settings = settings
        self.session: aiohttp.ClientSession | None = None
        # Server-sent event streams hold a connection for as long as an agent's screen is open: they get a
        # pool of their own, so hundreds of them cannot starve ordinary requests of connections.
        self.stream_session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        s = self._settings
        self.session = self._session(s.upstream_pool_size, aiohttp.ClientTimeout(
            total=None, connect=s.pool_timeout_seconds, sock_connect=s.connect_timeout_seconds,
            sock_read=s.upstream_timeout_seconds))
        self.stream_session = self._session(0, aiohttp.ClientTimeout(
            total=None, sock_connect=s.connect_timeout_seconds, sock_read=None))

    def _session(self, pool_size: int, timeout: aiohttp.ClientTimeout) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(limit=0, limit_per_host=pool_size,
                                         keepalive_timeout=self._settings.upstream_keepalive_seconds,
                                         ttl_dns_cache=300)
        return aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),  # cookies belong to the browser, not to the gateway
            auto_decompress=False,  # pass compressed bodies through untouched
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
            timeout=timeout,
            read_bufsize=2 ** 16,
        )

    async def close(self) -> None:
        for session in (self.session, self.stream_session):
            if session is not None:
                await session.close()
        await asyncio.sleep(0)


def build_upstreams(settings: Settings) -> dict[str, Upstream]:
    return {name: Upstream(name, url, settings) for name, url in settings.upstream_urls().items()}
