"""Transactional outbox. `record_event` writes the event in the caller's transaction, so the business change
and its event commit together or not at all. `OutboxRelay` publishes committed rows to JetStream with
`Nats-Msg-Id` = event id (JetStream drops a duplicate inside its window; consumers' inboxes drop the rest)
and marks them published, retrying while NATS is away.

The rows of a transaction that has just committed are handed to the relay in memory and published from there:
reading them back cost a transaction (BEGIN, SELECT ... FOR UPDATE, COMMIT) per batch. The table stays the
source of truth: the relay also reads it, at start and every poll interval, for rows the quick path did not
publish (NATS away, a crash between commit and publish, another replica's leftovers)."""

from __future__ import annotations

import asyncio
from collections import deque
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson
from sqlalchemy import (BigInteger, Column, DateTime, Index, Integer, LargeBinary, String, Table, bindparam, event, func,
                        select, update)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from services.background import cancel_and_wait
from services.db import (ON_EVENTS_COMMITTED, Database, DriverStatement, kernel_metadata, refuse_writes_on_read_only,
                         sqlite_write_intent)
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


# The rows a session's transaction has recorded and not yet written (see _write_pending_events), and those it
# has written, handed to the relay once the transaction commits.
_PENDING = "outbox_pending_rows"
_WRITTEN = "outbox_written_rows"
# Committed rows held in memory for the quick path at most; beyond that they wait for the poll (NATS away).
MAX_HELD_ROWS = 10_000


async def record_event(session: AsyncSession, event: EventData, *, subject_key: str) -> Envelope:
    """Add an event to the outbox inside the caller's (uncommitted) transaction. The rows are written together,
    in one INSERT, just before the transaction commits (a booking records three events: one statement, not
    three); a transaction that rolls back writes none."""
    if not session.in_transaction():
        await session.connection()  # begin now, so this event belongs to this transaction and ends with it
    envelope, row = outbox_row(event, producer=session.info.get("producer", "unknown"), subject_key=subject_key,
                               correlation_id=request_id_var.get())
    session.info.setdefault(_PENDING, []).append(row)
    return envelope


def outbox_row(event: EventData, *, producer: str, subject_key: str,
               correlation_id: str | None) -> tuple[Envelope, dict[str, Any]]:
    """The event in its envelope, and the outbox row that carries it."""
    envelope = Envelope.wrap(event, producer=producer, subject_key=subject_key, correlation_id=correlation_id)
    return envelope, {"event_id": str(envelope.id), "subject": envelope.subject,
                      "payload": orjson.dumps(envelope.model_dump(mode="json")), "created_at": envelope.occurred_at}


_INSERT = outbox_table.insert()
# The same INSERT with exactly the columns of a row, for a batch written on the driver's connection (services.groupcommit).
INSERT_ON_DRIVER = DriverStatement(outbox_table.insert().values(
    {name: bindparam(name) for name in ("event_id", "subject", "payload", "created_at")}))


@event.listens_for(Session, "before_commit")
def _write_pending_events(session: Session) -> None:
    rows = session.info.pop(_PENDING, None)
    if rows:
        refuse_writes_on_read_only(session)
        # On the connection: a Core INSERT has no use for the ORM session's per-execution work. One row is a plain
        # execute; only several take the driver's executemany. (A multi-row VALUES statement would be compiled
        # anew every time: SQLAlchemy does not cache it.)
        session.connection().execute(_INSERT, rows[0] if len(rows) == 1 else rows)
        session.info.setdefault(_WRITTEN, []).extend(rows)


@event.listens_for(Session, "after_commit")
def _hand_committed_events_to_the_relay(session: Session) -> None:
    if session.get_nested_transaction() is not None:
        return  # a savepoint: nothing is committed until the whole transaction is
    rows = session.info.pop(_WRITTEN, None)
    on_committed = session.info.get(ON_EVENTS_COMMITTED)
    if rows and on_committed is not None:
        try:
            on_committed(rows)
        except Exception:  # noqa: BLE001 - the change is committed: the relay's poll publishes the rows
            log.exception("outbox.handover_failed")


@event.listens_for(Session, "after_rollback")
def _forget_written_events(session: Session) -> None:
    # Rolled back, perhaps only to a savepoint: hand nothing over (the poll finds whatever did commit).
    session.info.pop(_WRITTEN, None)


@event.listens_for(Session, "after_transaction_end")
def _forget_pending_events(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the whole transaction ended (rolled back, or committed: already written)
        session.info.pop(_PENDING, None)
        session.info.pop(_WRITTEN, None)


def _mark_published(event_ids: list[str]) -> Any:
    return update(outbox_table).where(outbox_table.c.event_id.in_(event_ids)).values(published_at=utcnow())


class OutboxRelay:
    def __init__(self, db: Database, messaging: Messaging, *, batch_size: int = 200, poll_seconds: float = 0.5,
                 publish_timeout: float = 5.0, linger_seconds: float = 0.0) -> None:
        self.db = db
        self.linger_seconds = linger_seconds
        self.messaging = messaging
        self.batch_size = batch_size
        self.poll_seconds = poll_seconds
        self.publish_timeout = publish_timeout
        self._committed: deque[dict[str, Any]] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        # Marking rows published is one statement: on PostgreSQL it runs in autocommit (no BEGIN/COMMIT).
        engine = db.background_engine
        self._marker = engine.execution_options(isolation_level="AUTOCOMMIT") if db.dialect == "postgresql" else engine
        db.on_events_committed = self.committed

    def committed(self, rows: list[dict[str, Any]]) -> None:
        """The rows of a transaction that has just committed: published next, without reading them back."""
        if len(self._committed) + len(rows) <= MAX_HELD_ROWS:
            self._committed.extend(rows)
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self, flush_seconds: float = 5.0) -> None:
        """Stop the loop, then try once more, briefly, to publish what is pending (it stays safe in the table)."""
        self._stopping = True
        if self.db.on_events_committed == self.committed:
            self.db.on_events_committed = None
        await cancel_and_wait(self._task)
        if self.messaging.connected:
            try:
                await asyncio.wait_for(self.drain(), timeout=flush_seconds)
            except Exception as exc:  # noqa: BLE001
                log.warning("outbox.flush_incomplete", error=str(exc))

    async def drain(self) -> int:
        """Publish every unpublished row in the table (those held in memory are among them)."""
        self._committed.clear()
        total = 0
        while True:
            n = await self.publish_batch()
            total += n
            if n < self.batch_size:
                return total

    async def _run(self) -> None:
        await self.messaging.wait_ready()
        loop = asyncio.get_running_loop()
        delay = 0.2
        next_poll = 0.0  # at once: rows an earlier run of the service left unpublished
        while not self._stopping:
            try:
                if self._committed:
                    published = await self.publish_committed()
                    delay = 0.2
                    if published < self.batch_size and self.linger_seconds:
                        # Under steady traffic rows keep arriving: going round at once made batches of one or
                        # two commits and cost more CPU per event than it saved in lag.
                        await asyncio.sleep(self.linger_seconds)
                    continue
                if loop.time() >= next_poll:
                    # Rows younger than a poll interval are most likely on their way through the quick path.
                    settled = 0.0 if next_poll == 0.0 else self.poll_seconds
                    published = await self.publish_batch(settled_seconds=settled)
                    delay = 0.2
                    if published >= self.batch_size:
                        continue
                    next_poll = loop.time() + self.poll_seconds
                self._wake.clear()
                if self._committed:
                    continue
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=max(0.0, next_poll - loop.time()))
                except asyncio.TimeoutError:
                    pass
                if self.linger_seconds and self._committed:
                    await asyncio.sleep(self.linger_seconds)  # let the commits of the next moment join the batch
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - NATS or the database away: keep the rows, retry later
                PUBLISH_FAILURES.labels(self.db.producer).inc()
                log.warning("outbox.publish_failed", error=str(exc), retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                next_poll = min(next_poll, loop.time())  # whatever failed is picked up from the table

    async def publish_committed(self) -> int:
        """Publish the next batch of rows handed over at commit, then mark them published. Rows that fail stay
        unpublished in the table for the poll."""
        js = self._jetstream()
        rows = [self._committed.popleft() for _ in range(min(len(self._committed), self.batch_size))]
        published, failures = await self._publish(js, rows)
        if published:
            async with self._marker.begin() as conn:
                await conn.execute(_mark_published(published))
        EVENTS_PUBLISHED.labels(self.db.producer).inc(len(published))
        if failures:
            raise failures[0]
        return len(rows)

    def _jetstream(self) -> Any:
        js = self.messaging.js
        if js is None or not self.messaging.connected:
            raise ConnectionError("NATS is not connected")
        return js

    async def _publish(self, js: Any, rows: list[Any]) -> tuple[list[str], list[BaseException]]:
        """Publish rows (mappings with subject, payload, event_id), pipelined; returns the event ids JetStream
        acknowledged, and the failures."""
        results = await asyncio.gather(
            *(js.publish(r["subject"], r["payload"], timeout=self.publish_timeout, headers={"Nats-Msg-Id": r["event_id"]})
              for r in rows),
            return_exceptions=True,
        )
        published = [r["event_id"] for r, res in zip(rows, results) if not isinstance(res, BaseException)]
        return published, [res for res in results if isinstance(res, BaseException)]

    async def publish_batch(self, settled_seconds: float = 0.0) -> int:
        """Publish the oldest unpublished rows of the table that are at least `settled_seconds` old."""
        js = self._jetstream()  # before any row is locked
        postgres = self.db.dialect == "postgresql"
        async with self.db.session(background=True) as session:
            query = (select(outbox_table.c.event_id, outbox_table.c.subject, outbox_table.c.payload)
                     .where(outbox_table.c.published_at.is_(None)).order_by(outbox_table.c.seq).limit(self.batch_size))
            if settled_seconds:
                query = query.where(outbox_table.c.created_at < utcnow() - timedelta(seconds=settled_seconds))
            if postgres:
                # Several replicas may relay at once; each takes rows no other is publishing.
                rows = (await session.execute(query.with_for_update(skip_locked=True))).mappings().all()
            else:
                # SQLite has one writer: read without taking the write lock and release it before publishing.
                token = sqlite_write_intent.set(False)
                try:
                    rows = (await session.execute(query)).mappings().all()
                    await session.commit()
                finally:
                    sqlite_write_intent.reset(token)
            if not rows:
                await session.commit()
                OUTBOX_PENDING.labels(self.db.producer).set(0)
                return 0
            published: list[str] = []
            failures: list[BaseException] = []
            try:
                published, failures = await self._publish(js, rows)
            finally:
                if published:
                    await session.execute(_mark_published(published))
                await session.commit()
            EVENTS_PUBLISHED.labels(self.db.producer).inc(len(published))
            if failures:
                raise failures[0]
            return len(rows)

    async def pending_count(self) -> int:
        async with self.db.session() as session:
            return int((await session.execute(select(func.count()).select_from(outbox_table)
                                              .where(outbox_table.c.published_at.is_(None)))).scalar_one())
