"""booking-svc in-process on a fresh database (SQLite and PostgreSQL) and a real nats-server, with a clock the
tests move (the service reads time only from app.state.clock) and helpers that seed its copy of registry data."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

import httpx
import nhs_number
import orjson
import pytest
from booking_svc.main import build_app
from booking_svc.registry.consumers import HANDLERS
from booking_svc.settings import Settings
from fastapi import FastAPI
from sqlalchemy import select, text

from services.contracts.registry import (
    Clinician,
    CliniciansReplaced,
    PatientsSynced,
    PracticeCreated,
    Registration,
    SlotTypeRules,
    SlotTypesReplaced,
)
from services.events import Envelope, EventData
from services.outbox import outbox_table
from tests.support.apps import ADMIN, running_service

# Monday 11 January 2027, 09:00 in London (GMT): every test starts here.
START = datetime(2027, 1, 11, 9, 0, tzinfo=timezone.utc)
TOMORROW = date(2027, 1, 12)

CLINICIANS = [
    Clinician(clinician_id="C1", name="Dr Asha Patel", role="gp", gender="female"),
    Clinician(clinician_id="C2", name="Dr Tom Reid", role="gp", gender="male"),
    Clinician(clinician_id="N1", name="Sam Lee RN", role="nurse", gender="male"),
]
SLOT_TYPES = [
    SlotTypeRules(code="ROUTINE", name="Routine", channel="in_person", bookable_by_centre=True, max_days_ahead=28,
                  min_notice_minutes=0),
    SlotTypeRules(code="SHARED", name="Hub phone", channel="telephone", bookable_by_centre=True, max_days_ahead=28,
                  min_notice_minutes=0, shared_with_pcn=True),
    SlotTypeRules(code="URGENT", name="On the day", channel="in_person", bookable_by_centre=True, max_days_ahead=1,
                  min_notice_minutes=0, release={"days_before": 0, "at_time": "08:00"}),
    SlotTypeRules(code="INTERNAL", name="Practice only", channel="in_person", bookable_by_centre=False,
                  max_days_ahead=28, min_notice_minutes=0),
    SlotTypeRules(code="NOTICE", name="Needs notice", channel="video", bookable_by_centre=True, max_days_ahead=28,
                  min_notice_minutes=120),
]


def nhs(n: int) -> str:
    """The n-th valid NHS number of the never-issued 999 range."""
    stem = 999_100_000 + n * 10
    while True:
        check = nhs_number.calculate_checksum(f"{stem:09d}")
        if check is not None and check < 10:
            return f"{stem:09d}{check}"
        stem += 1


def session(session_id: str, day: date, start: str, end: str, *, clinician: str = "C1", slot_type: str = "ROUTINE",
            minutes: int = 10) -> dict[str, Any]:
    return {"session_id": session_id, "clinician_id": clinician, "slot_type": slot_type,
            "start": f"{day.isoformat()}T{start}:00", "end": f"{day.isoformat()}T{end}:00", "slot_minutes": minutes}


def rota(sessions: list[dict], start: date = TOMORROW, days: int = 14) -> dict[str, Any]:
    return {"from": start.isoformat(), "to": (start + timedelta(days=days)).isoformat(), "sessions": sessions}


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class Booking:
    app: FastAPI
    client: httpx.AsyncClient
    clock: Clock
    nats_url: str
    versions: dict[str, int] = field(default_factory=dict)

    async def apply(self, *events: EventData) -> None:
        """Apply registry events through the service's own handlers, each in its own transaction, then tell the
        service it was applied, as its consumer does after each commit."""
        (consumer,) = self.app.state.consumers  # booking-svc reads one stream: the registry's
        for event in events:
            envelope = Envelope.wrap(event, producer="practice-registry-svc", subject_key=event.ods_code,
                                     correlation_id=None)
            async with self.app.state.db.transaction() as db_session:
                await HANDLERS[type(event)](db_session, envelope, event)
            consumer.after_commit(envelope)

    def next_version(self, ods: str) -> int:
        self.versions[ods] = self.versions.get(ods, 0) + 1
        return self.versions[ods]

    async def seed_practice(self, ods: str, *, pcn: str | None = None, status: str = "active",
                            patients: list[str] = (), clinicians=CLINICIANS, slot_types=SLOT_TYPES) -> None:
        await self.apply(
            PracticeCreated(ods_code=ods, name=f"Surgery {ods}", pcn=pcn, status=status, version=self.next_version(ods)),
            CliniciansReplaced(ods_code=ods, clinicians=list(clinicians), version=self.next_version(ods)),
            SlotTypesReplaced(ods_code=ods, slot_types=list(slot_types), version=self.next_version(ods)),
            PatientsSynced(ods_code=ods, registered=[Registration(nhs_number=n) for n in patients]))

    async def put_rota(self, ods: str, body: dict, headers: dict | None = None) -> httpx.Response:
        return await self.client.put(f"/api/v1/rotas/{ods}", json=body, headers=headers or ADMIN)

    async def slots(self, headers: dict, **params: Any) -> list[dict]:
        """Every page of a slot search."""
        items, cursor = [], None
        while True:
            response = await self.client.get("/api/v1/slots", params={**params, "limit": 500, "cursor": cursor},
                                              headers=headers)
            assert response.status_code == 200, response.text
            items += response.json()["items"]
            cursor = response.json()["next_cursor"]
            if not cursor:
                return items

    async def events(self, subject: str | None = None) -> list[dict]:
        """Envelopes this service wrote to its outbox, oldest first (whether or not relayed yet)."""
        async with self.app.state.db.session() as db_session:
            rows = (await db_session.execute(select(outbox_table.c.subject, outbox_table.c.payload)
                                             .order_by(outbox_table.c.seq))).all()
        return [orjson.loads(r.payload) for r in rows if subject is None or r.subject == subject]

    async def sql(self, statement: str, **params: Any) -> list:
        async with self.app.state.db.session() as db_session:
            return list((await db_session.execute(text(statement), params)).all())


def booking_settings(database_url: str, nats_url: str, **overrides: Any) -> Settings:
    return Settings(database_url=database_url, nats_url=nats_url, outbox_poll_seconds=0.1, log_level="WARNING",
                    **overrides)


@pytest.fixture
async def booking(database_url: str, nats_url: str) -> AsyncIterator[Booking]:
    clock = Clock(START)
    async with running_service("booking_svc", build_app, booking_settings(database_url, nats_url)) as (app, client):
        app.state.clock = clock
        yield Booking(app=app, client=client, clock=clock, nats_url=nats_url)
        await fast_nats_close(app)


async def fast_nats_close(app: FastAPI) -> None:
    """Close the NATS connection before the lifespan ends. Messaging.close() drains, and a pull consumer cancelled
    mid-fetch leaves a reply that keeps the drain waiting its full 3 s timeout; tests do not need the drain."""
    if app.state.messaging.nc is not None:
        await asyncio.wait_for(app.state.messaging.nc.close(), timeout=5)


@asynccontextmanager
async def scratch_booking() -> AsyncIterator[Booking]:
    """For the CPU benches (bench_*_cpu.py): booking-svc in this process on a scratch PostgreSQL database of its
    own, with a nats-server of its own, both gone afterwards."""
    from tests.support.cpubench import scratch_postgres_and_nats

    async with scratch_postgres_and_nats() as (database_url, nats_url):
        async with running_service("booking_svc", build_app, booking_settings(database_url, nats_url)) as (app, client):
            app.state.clock = Clock(START)
            yield Booking(app=app, client=client, clock=app.state.clock, nats_url=nats_url)
            await fast_nats_close(app)
