"""Pruning the outbox and the inbox. A published outbox row keeps its event's payload (booking and registry
events carry NHS numbers); an inbox row keeps an event id so that a redelivery is recognised. Both are needed
only while JetStream may still deliver the event, so rows older than `EVENT_LOG_RETENTION_DAYS` (longer than a
stream keeps a message) are deleted, by every service, in the background: nobody has to remember a job."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.background import cancel_and_wait
from services.db import Database
from services.inbox import inbox_table
from services.logging import get_logger
from services.outbox import outbox_table

log = get_logger(__name__)


def _published_before(cutoff: datetime) -> tuple:
    return (outbox_table.c.published_at.is_not(None), outbox_table.c.published_at < cutoff)


async def count_published_events(session: AsyncSession, cutoff: datetime) -> int:
    return int(await session.scalar(select(func.count()).select_from(outbox_table)
                                    .where(*_published_before(cutoff))) or 0)


async def delete_published_events(session: AsyncSession, cutoff: datetime) -> int:
    return (await session.execute(delete(outbox_table).where(*_published_before(cutoff)))).rowcount


async def count_processed_events(session: AsyncSession, cutoff: datetime) -> int:
    return int(await session.scalar(select(func.count()).select_from(inbox_table)
                                    .where(inbox_table.c.processed_at < cutoff)) or 0)


async def delete_processed_events(session: AsyncSession, cutoff: datetime) -> int:
    return (await session.execute(delete(inbox_table).where(inbox_table.c.processed_at < cutoff))).rowcount


class EventLogPruner:
    """Every `interval_seconds` (the first time shortly after start), deletes outbox rows published and inbox
    rows processed more than `retention_days` ago. Replicas may prune at the same time: the deletes are the
    same and idempotent. A failure (the database away) is logged and tried again next time."""

    def __init__(self, db: Database, *, retention_days: int, interval_seconds: float,
                 first_after_seconds: float = 60.0) -> None:
        self.db = db
        self.retention = timedelta(days=retention_days)
        self.interval_seconds = interval_seconds
        self.first_after_seconds = first_after_seconds
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="event-log-pruner")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)

    async def _run(self) -> None:
        await asyncio.sleep(self.first_after_seconds)
        while True:
            try:
                await self.prune(datetime.now(timezone.utc))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the database away: next time
                log.warning("event_log.prune_failed", error=str(exc))
            await asyncio.sleep(self.interval_seconds)

    async def prune(self, now: datetime) -> tuple[int, int]:
        """Delete what is older than the retention at `now`; returns (outbox rows, inbox rows) deleted."""
        cutoff = now - self.retention
        async with self.db.transaction(background=True) as session:
            published = await delete_published_events(session, cutoff)
            processed = await delete_processed_events(session, cutoff)
        if published or processed:
            log.info("event_log.pruned", outbox_events_deleted=published, inbox_events_deleted=processed)
        return published, processed
