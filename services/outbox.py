"""Transactional outbox. `record_event` writes the event in the caller's transaction, so the business change
and its event commit together or not at all. `OutboxRelay` publishes committed rows to JetStream with
`Nats-Msg-Id` = event id (JetStream drops a duplicate inside its window; consumers' inboxes drop the rest)
and marks them published, retrying while NATS is away."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import orjson
from sqlalchemy import (BigInteger, Column, DateTime, Index, Integer, LargeBinary, String, Table, event, func, select,
                        update)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from services.background import cancel_and_wait
from services.db import Database, kernel_metadata, sqlite_write_intent
from services.events import Envelope, EventData
from services.logging import get_logger, request_id_var
from services.messaging import Messaging
from services.metrics import EVENTS_PUBLISHED, OUTBOX_PENDING, PUBLISH_FAILURES

log = get_logger(__name__)

outbox_table = Table(
    "outbox",
    kernel_metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("subject", String(200), nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("published_at", DateTime(timezone=True), nullable=True),
    Index("ix_outbox_unpublished", "published_at", "seq"),
)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


# The rows a session's transaction has recorded and not yet written (see _write_pending_events).
_PENDING = "outbox_pending_rows"


async def record_event(session: AsyncSession, event: EventData, *, subject_key: str) -> Envelope:
    """Add an event to the outbox inside the caller's (uncommitted) transaction. The rows are written together,
    in one INSERT, just before the transaction commits (a booking records three events: one statement, not
    three); a transaction that rolls back writes none."""
    if not session.in_transaction():
        await session.connection()  # begin now, so this event belongs to this transaction and ends with it
    envelope = Envelope.wrap(event, producer=session.info.get("producer", "unknown"), subject_key=subject_key,
                             correlation_id=request_id_var.get())
    session.info.setdefault(_PENDING, []).append({
        "event_id": str(envelope.id), "subject": envelope.subject,
        "payload": orjson.dumps(envelope.model_dump(mode="json")), "created_at": envelope.occurred_at})
    session.info["outbox_dirty"] = True
    return envelope


@event.listens_for(Session, "before_commit")
def _write_pending_events(session: Session) -> None:
    rows = session.info.pop(_PENDING, None)
    if rows:
        session.execute(outbox_table.insert(), rows)


@event.listens_for(Session, "after_transaction_end")
def _forget_pending_events(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the whole transaction ended (rolled back, or committed: already written)
        session.info.pop(_PENDING, None)


class OutboxRelay:
    def __init__(self, db: Database, messaging: Messaging, *, batch_size: int = 200, poll_seconds: float = 0.5,
                 publish_timeout: float = 5.0, linger_seconds: float = 0.0) -> None:
        self.db = db
        self.linger_seconds = linger_seconds
        self.messaging = messaging
        self.batch_size = batch_size
        self.poll_seconds = poll_seconds
        self.publish_timeout = publish_timeout
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def wake(self) -> None:
        """Called after a commit that wrote events, so they go out now rather than at the next poll."""
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self, flush_seconds: float = 5.0) -> None:
        """Stop the loop, then try once more, briefly, to publish what is pending (it stays safe in the table)."""
        self._stopping = True
        await cancel_and_wait(self._task)
        if self.messaging.connected:
            try:
                await asyncio.wait_for(self.drain(), timeout=flush_seconds)
            except Exception as exc:  # noqa: BLE001
                log.warning("outbox.flush_incomplete", error=str(exc))

    async def drain(self) -> int:
        total = 0
        while True:
            n = await self.publish_batch()
            total += n
            if n < self.batch_size:
                return total

    async def _run(self) -> None:
        await self.messaging.wait_ready()
        delay = 0.2
        while not self._stopping:
            try:
                published = await self.publish_batch()
                delay = 0.2
                if published >= self.batch_size:
                    continue
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=self.poll_seconds)
                except asyncio.TimeoutError:
                    pass
                if self.linger_seconds:
                    await asyncio.sleep(self.linger_seconds)  # let the commits of the next moment join the batch
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - NATS or the database away: keep the rows, retry later
                PUBLISH_FAILURES.labels(self.db.producer).inc()
                log.warning("outbox.publish_failed", error=str(exc), retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def publish_batch(self) -> int:
        js = self.messaging.js
        if js is None or not self.messaging.connected:
            raise ConnectionError("NATS is not connected")
        postgres = self.db.dialect == "postgresql"
        async with self.db.session(background=True) as session:
            query = (select(outbox_table.c.seq, outbox_table.c.event_id, outbox_table.c.subject, outbox_table.c.payload)
                     .where(outbox_table.c.published_at.is_(None)).order_by(outbox_table.c.seq).limit(self.batch_size))
            if postgres:
                # Several replicas may relay at once; each takes rows no other is publishing.
                rows = (await session.execute(query.with_for_update(skip_locked=True))).all()
            else:
                # SQLite has one writer: read without taking the write lock and release it before publishing.
                token = sqlite_write_intent.set(False)
                try:
                    rows = (await session.execute(query)).all()
                    await session.commit()
                finally:
                    sqlite_write_intent.reset(token)
            if not rows:
                await session.commit()
                OUTBOX_PENDING.labels(self.db.producer).set(0)
                return 0
            published: list[int] = []
            try:
                # Publishes are pipelined; each row counts as sent only once JetStream acknowledged it.
                results = await asyncio.gather(
                    *(js.publish(r.subject, r.payload, timeout=self.publish_timeout, headers={"Nats-Msg-Id": r.event_id})
                      for r in rows),
                    return_exceptions=True,
                )
                failures = [res for res in results if isinstance(res, BaseException)]
                published = [r.seq for r, res in zip(rows, results) if not isinstance(res, BaseException)]
            finally:
                if published:
                    await session.execute(update(outbox_table).where(outbox_table.c.seq.in_(published))
                                          .values(published_at=utcnow()))
                await session.commit()
            EVENTS_PUBLISHED.labels(self.db.producer).inc(len(published))
            if failures:
                raise failures[0]
            return len(rows)

    async def pending_count(self) -> int:
        async with self.db.session() as session:
            return int((await session.execute(select(func.count()).select_from(outbox_table)
                                              .where(outbox_table.c.published_at.is_(None)))).scalar_one())
