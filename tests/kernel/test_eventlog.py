"""The event log's retention: published outbox rows and processed inbox rows older than the retention go, an
event not yet published never does. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from services.db import Database
from services.eventlog import EventLogPruner
from services.inbox import inbox_table
from services.outbox import outbox_table
from tests.support.apps import wait_until

NOW = datetime(2026, 11, 22, 8, 0, tzinfo=timezone.utc)


async def add_rows(db: Database, now: datetime) -> None:
    old, recent = now - timedelta(days=31), now - timedelta(days=29)
    outbox = [("published-long-ago", old, old), ("published-lately", recent, recent), ("never-published", old, None)]
    async with db.transaction() as session:
        await session.execute(outbox_table.insert(), [
            {"event_id": event_id, "subject": "booking.appointment.booked.v1", "payload": b'{"nhs_number": "..."}',
             "created_at": created, "published_at": published} for event_id, created, published in outbox])
        await session.execute(inbox_table.insert(), [
            {"consumer": "booking-svc", "event_id": event_id, "subject": "registry.practice.updated.v1",
             "processed_at": at} for event_id, at in (("processed-long-ago", old), ("processed-lately", recent))])


async def remaining(db: Database) -> tuple[set[str], set[str]]:
    async with db.session() as session:
        outbox = set((await session.execute(select(outbox_table.c.event_id))).scalars())
        inbox = set((await session.execute(select(inbox_table.c.event_id))).scalars())
    return outbox, inbox


async def test_old_published_and_processed_rows_go_and_an_unpublished_event_stays(db: Database) -> None:
    await add_rows(db, NOW)
    pruner = EventLogPruner(db, retention_days=30, interval_seconds=3600)
    assert await pruner.prune(NOW) == (1, 1)
    assert await remaining(db) == ({"published-lately", "never-published"}, {"processed-lately"})
    assert await pruner.prune(NOW) == (0, 0)  # idempotent


async def test_the_service_prunes_in_the_background(db: Database) -> None:
    await add_rows(db, datetime.now(timezone.utc))
    pruner = EventLogPruner(db, retention_days=30, interval_seconds=0.05, first_after_seconds=0)
    pruner.start()
    try:
        async def pruned() -> bool:
            outbox, inbox = await remaining(db)
            return "published-long-ago" not in outbox and "processed-long-ago" not in inbox

        await wait_until(pruned)
        outbox, _inbox = await remaining(db)
        assert "never-published" in outbox
    finally:
        await pruner.stop()
    assert pruner._task is not None and pruner._task.done()
