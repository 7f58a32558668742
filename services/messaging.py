"""The service's NATS connection: connects in the background (a service starts and serves without NATS),
reconnects forever, and declares the JetStream streams it touches."""

from __future__ import annotations

import asyncio
from typing import Any

import nats
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError

from services.events import STREAMS
from services.logging import get_logger

log = get_logger(__name__)

STREAM_MAX_AGE_SECONDS = 14 * 24 * 3600
DUPLICATE_WINDOW_SECONDS = 120


def stream_config(name: str, replicas: int = 1) -> StreamConfig:
    return StreamConfig(
        name=name,
        subjects=[f"{STREAMS[name]}.>"],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        max_age=STREAM_MAX_AGE_SECONDS,
        duplicate_window=DUPLICATE_WINDOW_SECONDS,
        discard=DiscardPolicy.OLD,
        num_replicas=replicas,
    )


class Messaging:
    def __init__(self, url: str, *, name: str, streams: tuple[str, ...] = tuple(STREAMS), replicas: int = 1) -> None:
        self.url = url
        self.name = name
        self.streams = streams
        self.replicas = replicas
        self.nc: NatsClient | None = None
        self.js: JetStreamContext | None = None
        self.ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def connected(self) -> bool:
        return self.nc is not None and self.nc.is_connected

    def start(self) -> None:
        self._task = asyncio.create_task(self._connect_until_done(), name=f"{self.name}-nats-connect")

    async def _connect_until_done(self) -> None:
        delay = 0.2
        while True:
            try:
                self.nc = await nats.connect(
                    self.url, name=self.name, connect_timeout=2, reconnect_time_wait=0.5,
                    max_reconnect_attempts=-1, allow_reconnect=True, ping_interval=10, max_outstanding_pings=3,
                    error_cb=self._on_error, disconnected_cb=self._on_disconnected, reconnected_cb=self._on_reconnected,
                )
                self.js = self.nc.jetstream(timeout=5)
                await self.ensure_streams()
                self.ready.set()
                log.info("nats.connected", url=self.url)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure means "try again shortly"
                log.warning("nats.connect_failed", error=str(exc), retry_in=delay)
                if self.nc is not None:
                    await _quietly_close(self.nc)
                    self.nc = None
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def ensure_streams(self) -> None:
        assert self.js is not None
        for name in self.streams:
            config = stream_config(name, self.replicas)
            try:
                await self.js.add_stream(config)
            except BadRequestError:
                await self.js.update_stream(config)

    async def wait_ready(self) -> JetStreamContext:
        await self.ready.wait()
        assert self.js is not None
        return self.js

    async def close(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
        if self.nc is not None:
            await _quietly_close(self.nc)

    async def _on_error(self, exc: Exception) -> None:
        log.warning("nats.error", error=str(exc))

    async def _on_disconnected(self) -> None:
        log.warning("nats.disconnected")

    async def _on_reconnected(self) -> None:
        log.info("nats.reconnected")


async def _quietly_close(nc: Any) -> None:
    # By now consumers have stopped and the relay has flushed: nothing is in flight that a drain would save.
    try:
        await asyncio.wait_for(nc.close(), timeout=3)
    except Exception:  # noqa: BLE001
        pass
