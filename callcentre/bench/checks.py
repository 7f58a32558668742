"""What the databases say after a run: no slot booked twice, every acknowledged booking stored, every booked
event published by booking-svc's outbox and applied once by agent-desk-svc, and how long that took."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from callcentre.bench.stats import latency_summary

BOOKED_SUBJECT = "booking.appointment.booked.v1"
DESK_CONSUMER = "agent-desk-svc"
ACTIVE = ("booked", "arrived", "completed", "did_not_attend")


def _utc(value: Any) -> datetime:
    """Timestamps from either dialect (SQLite gives naive UTC datetimes or ISO strings)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


class RunChecks:
    def __init__(self, booking_db_url: str, desk_db_url: str) -> None:
        self.booking: AsyncEngine = create_async_engine(booking_db_url, pool_size=2, pool_pre_ping=True)
        self.desk: AsyncEngine = create_async_engine(desk_db_url, pool_size=2, pool_pre_ping=True)

    async def close(self) -> None:
        await self.booking.dispose()
        await self.desk.dispose()

    async def wait_for_registrations(self, practices: list[str], expected: int, timeout: float = 180) -> None:
        """booking-svc learns registrations from registry events: wait (bounded) until it knows them all."""
        query = text("SELECT count(*) FROM registrations WHERE ods_code IN :codes").bindparams(
            bindparam("codes", expanding=True))
        deadline = time.monotonic() + timeout
        while True:
            async with self.booking.connect() as conn:
                known = int((await conn.execute(query, {"codes": practices})).scalar_one())
            if known >= expected:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"booking-svc knows {known} of {expected} registrations after {timeout} s")
            await asyncio.sleep(0.5)

    async def refresh_statistics(self) -> bool:
        """ANALYZE booking-svc's database (PostgreSQL), as autovacuum soon would after a bulk load: measure the
        steady state, not the minute after seeding when the planner still believes the tables are empty."""
        if self.booking.dialect.name != "postgresql":
            return False
        async with self.booking.connect() as conn:
            await conn.execute(text("ANALYZE"))
            await conn.commit()
        return True

    async def double_bookings(self) -> int:
        """Slots with more than one active appointment (the partial unique index should make this impossible)."""
        query = text("SELECT count(*) FROM (SELECT slot_id FROM appointments WHERE status IN :active "
                     "GROUP BY slot_id HAVING count(*) > 1) AS twice").bindparams(bindparam("active", expanding=True))
        async with self.booking.connect() as conn:
            return int((await conn.execute(query, {"active": list(ACTIVE)})).scalar_one())

    async def slots_out_of_step(self) -> dict[str, int]:
        """Booked slots without an active appointment, and active appointments whose slot is not booked."""
        params = {"active": list(ACTIVE)}
        orphan_slots = text("SELECT count(*) FROM slots s WHERE s.status = 'booked' AND NOT EXISTS (SELECT 1 FROM "
                            "appointments a WHERE a.slot_id = s.id AND a.status IN :active)"
                            ).bindparams(bindparam("active", expanding=True))
        loose = text("SELECT count(*) FROM appointments a JOIN slots s ON s.id = a.slot_id WHERE a.status IN :active "
                     "AND s.status <> 'booked'").bindparams(bindparam("active", expanding=True))
        async with self.booking.connect() as conn:
            return {"booked_slots_without_appointment": int((await conn.execute(orphan_slots, params)).scalar_one()),
                    "appointments_on_unbooked_slots": int((await conn.execute(loose, params)).scalar_one())}

    async def appointments_by(self, booked_by_prefix: str, since: datetime) -> int:
        query = text("SELECT count(*) FROM appointments WHERE booked_by LIKE :prefix AND created_at >= :since")
        async with self.booking.connect() as conn:
            return int((await conn.execute(query, {"prefix": booked_by_prefix + "%", "since": since})).scalar_one())

    async def existing_appointments(self, ids: list[str]) -> int:
        found = 0
        async with self.booking.connect() as conn:
            for start in range(0, len(ids), 1000):
                query = text("SELECT count(*) FROM appointments WHERE id IN :ids").bindparams(
                    bindparam("ids", expanding=True))
                found += int((await conn.execute(query, {"ids": ids[start:start + 1000]})).scalar_one())
        return found

    async def booked_events(self, since: datetime) -> dict[str, Any]:
        """Booked events created since `since` in booking-svc's outbox: event id -> (created, published or None)."""
        query = text("SELECT event_id, created_at, published_at FROM outbox WHERE subject = :subject "
                     "AND created_at >= :since")
        async with self.booking.connect() as conn:
            rows = (await conn.execute(query, {"subject": BOOKED_SUBJECT, "since": since})).all()
        return {r.event_id: (_utc(r.created_at), _utc(r.published_at) if r.published_at else None) for r in rows}

    async def applied_events(self, since: datetime) -> dict[str, datetime]:
        query = text("SELECT event_id, processed_at FROM inbox WHERE consumer = :consumer AND subject = :subject "
                     "AND processed_at >= :since")
        async with self.desk.connect() as conn:
            rows = (await conn.execute(query, {"consumer": DESK_CONSUMER, "subject": BOOKED_SUBJECT,
                                               "since": since})).all()
        return {r.event_id: _utc(r.processed_at) for r in rows}

    async def events(self, since: datetime, *, drain_timeout: float, expected: int | None = None,
                     log: Callable[[str], None] = print) -> dict[str, Any]:
        """Wait (bounded) until every booked event since `since` is published and applied by agent-desk-svc,
        then report counts and the lag from the booking's transaction to the desk's applying it."""
        began = time.monotonic()
        deadline = began + drain_timeout
        while True:
            created = await self.booked_events(since)
            applied = await self.applied_events(since)
            published = sum(1 for _c, p in created.values() if p is not None)
            applied_ours = {k: v for k, v in applied.items() if k in created}
            complete = published == len(created) and len(applied_ours) == len(created)
            if expected is not None:
                complete = complete and len(created) >= expected
            if complete or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        lags = [applied_ours[k] - created[k][0] for k in applied_ours]
        publish_lags = [p - c for c, p in created.values() if p is not None]
        summary = latency_summary([d.total_seconds() for d in lags])
        return {
            "events_created": len(created),
            "events_published": published,
            "events_applied": len(applied_ours),
            "drained": complete,
            "drain_wait_seconds": round(time.monotonic() - began, 1),
            "event_lag_p50_ms": summary["p50_ms"],
            "event_lag_p95_ms": summary["p95_ms"],
            "event_lag_p99_ms": summary["p99_ms"],
            "event_lag_max_ms": summary["max_ms"],
            "publish_lag_p99_ms": latency_summary([d.total_seconds() for d in publish_lags])["p99_ms"],
        }
