from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import nats
import pytest
from fastapi import FastAPI
from nats.js.errors import NotFoundError

from practice_registry_svc.main import build_app
from practice_registry_svc.settings import Settings
from services.events import Envelope
from tests.support.apps import running_service, wait_until


@dataclass
class Registry:
    app: FastAPI
    client: httpx.AsyncClient
    nats_url: str

    async def events(self, subject: str | None = None) -> list[Envelope]:
        """What the registry published, read from the real nats-server's REGISTRY stream once its outbox is empty."""

        async def outbox_empty() -> bool:
            return await self.app.state.relay.pending_count() == 0

        await wait_until(outbox_empty, timeout=15)
        found = await stream_envelopes(self.nats_url)
        return [e for e in found if subject is None or e.subject == subject]


async def stream_envelopes(nats_url: str, stream: str = "REGISTRY") -> list[Envelope]:
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        try:
            info = await js.stream_info(stream)
        except NotFoundError:
            return []
        out = []
        if info.state.messages:
            for seq in range(info.state.first_seq, info.state.last_seq + 1):
                out.append(Envelope.model_validate_json((await js.get_msg(stream, seq)).data))
        return out
    finally:
        await nc.close()


@pytest.fixture
async def registry(database_url: str, nats_url: str) -> AsyncIterator[Registry]:
    """The registry running in-process on a fresh database (SQLite or PostgreSQL) and a real nats-server."""
    settings = Settings(database_url=database_url, nats_url=nats_url, outbox_poll_seconds=0.1)
    async with running_service("practice_registry_svc", build_app, settings) as (app, client):
        yield Registry(app=app, client=client, nats_url=nats_url)
