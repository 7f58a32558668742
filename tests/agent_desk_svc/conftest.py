from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from agent_desk_svc.main import build_app
from agent_desk_svc.settings import Settings
from services.events import Envelope, EventData
from tests.support.apps import identity, running_service

ADMIN_USER = "root"
ADMIN_PASSWORD = "root-password-0123"


def desk_settings(database_url: str, nats_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = dict(
        database_url=database_url, nats_url=nats_url, admin_user=ADMIN_USER, admin_password=ADMIN_PASSWORD,
        # Cheap hashes keep the suite quick; production uses argon2-cffi's defaults.
        argon2_time_cost=1, argon2_memory_kib=1024, argon2_parallelism=1,
        outbox_poll_seconds=0.05, live_dashboard_poll_seconds=0.5,
    )
    values.update(overrides)
    return Settings(**values)


@dataclass
class Desk:
    app: FastAPI
    client: httpx.AsyncClient
    settings: Settings
    logs: io.StringIO

    async def publish(self, event: EventData, *, subject_key: str, occurred_at: datetime | None = None) -> Envelope:
        """Publish an event to the test's nats-server as its producer's outbox relay would."""
        envelope = Envelope.wrap(event, producer=_producer(event), subject_key=subject_key, correlation_id=None)
        if occurred_at is not None:
            envelope.occurred_at = occurred_at
        return await self.republish(envelope, msg_id=str(envelope.id))

    async def republish(self, envelope: Envelope, *, msg_id: str) -> Envelope:
        """Publish an envelope again; a new message id gets it past JetStream's de-duplication."""
        js = await asyncio.wait_for(self.app.state.messaging.wait_ready(), 10)
        await js.publish(envelope.subject, envelope.model_dump_json().encode(), headers={"Nats-Msg-Id": msg_id})
        return envelope

    async def drained(self, stream: str) -> bool:
        """True once the service's durable consumer on `stream` has applied everything published so far."""
        js = self.app.state.messaging.js
        try:
            info = await js.consumer_info(stream, self.settings.service_name)
        except Exception:  # noqa: BLE001 - not created yet
            return False
        return info.num_pending == 0 and info.num_ack_pending == 0

    async def create_agent(self, username: str, role: str = "agent", password: str | None = None,
                           by: dict[str, str] | None = None) -> dict[str, Any]:
        response = await self.client.post("/api/v1/agents", headers=by or identity("admin", ADMIN_USER), json={
            "username": username, "password": password or f"{username}-password-1", "display_name": username.title(),
            "role": role})
        assert response.status_code == 201, response.text
        return response.json()


def _producer(event: EventData) -> str:
    return {"registry": "practice-registry-svc", "booking": "booking-svc", "desk": "agent-desk-svc"}[
        event.event_type.split(".", 1)[0]]


@pytest.fixture
async def desk(database_url: str, nats_url: str) -> AsyncIterator[Desk]:
    async with started_desk(desk_settings(database_url, nats_url)) as running:
        yield running


class started_desk:  # noqa: N801 - used like a function
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def __aenter__(self) -> Desk:
        self._cm = running_service("agent_desk_svc", build_app, self.settings)
        app, client = await self._cm.__aenter__()
        # Capture what the service logs, rendered exactly as it would reach the log stream.
        logs = io.StringIO()
        root = logging.getLogger()
        self._handler = logging.StreamHandler(logs)
        self._handler.setFormatter(root.handlers[0].formatter)
        root.addHandler(self._handler)
        return Desk(app=app, client=client, settings=self.settings, logs=logs)

    async def __aexit__(self, *exc: Any) -> None:
        logging.getLogger().removeHandler(self._handler)
        await self._cm.__aexit__(*exc)


def staff(username: str, role: str = "agent") -> dict[str, str]:
    return identity(role, username)
