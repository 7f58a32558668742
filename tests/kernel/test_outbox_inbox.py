"""Outbox, relay and inbox against a real nats-server, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timezone

import nats
import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, func, select

from services.contracts.desk import CallStarted
from services.db import Database, ReadOnlyWrite, execute_write
from services.events import Envelope
from services.inbox import EventConsumer
from services.messaging import Messaging
from services.outbox import OutboxRelay, outbox_table, record_event
from tests.support.apps import consumer_drained, wait_until
from tests.support.natsserver import NatsServer

test_metadata = MetaData()
applied_table = Table("applied", test_metadata, Column("id", Integer, primary_key=True),
                      Column("call_id", String(50), nullable=False))


def call_started(n: int) -> CallStarted:
    return CallStarted(call_id=f"call-{n}", agent="agent1", started_at=datetime.now(timezone.utc))


async def stream_messages(url: str, stream: str = "DESK") -> list:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        info = await js.stream_info(stream)
        out = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            if info.state.messages == 0:
                break
            out.append(await js.get_msg(stream, seq))
        return out
    finally:
        await nc.close()


async def test_committed_events_are_published_with_their_id_as_msg_id(db: Database, nats_server: NatsServer):
    messaging = Messaging(nats_server.url, name="agent-desk-svc")
    messaging.start()
    relay = OutboxRelay(db, messaging, poll_seconds=0.05)
    relay.start()
    try:
        async with db.transaction() as session:
            envelope = await record_event(session, call_started(1), subject_key="A81001")
        async with db.session() as session:  # a rolled-back change publishes nothing
            await record_event(session, call_started(2), subject_key="A81001")
            await session.rollback()
        await wait_until(lambda: relay_pending_zero(db))
        messages = await stream_messages(nats_server.url)
        assert len(messages) == 1
        assert messages[0].subject == "desk.call.started.v1"
        assert messages[0].headers["Nats-Msg-Id"] == str(envelope.id)
        body = Envelope.model_validate_json(messages[0].data)
        assert body.data["call_id"] == "call-1" and body.producer == "agent-desk-svc"
    finally:
        await relay.stop()
        await messaging.close()


async def test_a_transactions_events_are_written_together_in_order_and_only_if_it_commits(db: Database):
    async with db.session() as session:
        await record_event(session, call_started(1), subject_key="A81001")
        await session.rollback()  # this transaction's event must not leak into the next one
        first = await record_event(session, call_started(2), subject_key="A81001")
        second = await record_event(session, call_started(3), subject_key="A81001")
        async with db.read_transaction() as other:  # nothing is visible before the commit
            assert (await other.execute(select(func.count()).select_from(outbox_table))).scalar_one() == 0
        await session.commit()
    async with db.session() as session:
        rows = (await session.execute(select(outbox_table.c.event_id).order_by(outbox_table.c.seq))).scalars().all()
    assert rows == [str(first.id), str(second.id)]


async def test_a_transaction_with_hundreds_of_events_writes_them_all_in_order(db: Database):
    """A transaction's events go in one executemany of the cached INSERT, however many there are."""
    async with db.transaction() as session:
        recorded = [await record_event(session, call_started(n), subject_key="A81001") for n in range(250)]
    async with db.session() as session:
        rows = (await session.execute(select(outbox_table.c.event_id, outbox_table.c.subject, outbox_table.c.payload)
                                      .order_by(outbox_table.c.seq))).all()
    assert [r.event_id for r in rows] == [str(e.id) for e in recorded]
    assert {r.subject for r in rows} == {"desk.call.started.v1"}
    assert Envelope.model_validate_json(rows[-1].payload).data["call_id"] == "call-249"


async def relay_pending_zero(db: Database) -> bool:
    async with db.session() as session:
        count = (await session.execute(select(func.count()).select_from(outbox_table)
                                       .where(outbox_table.c.published_at.is_(None)))).scalar_one()
        return count == 0


async def test_relay_survives_nats_restart_without_losing_or_doubling(db: Database, nats_server: NatsServer):
    messaging = Messaging(nats_server.url, name="agent-desk-svc")
    messaging.start()
    await asyncio.wait_for(messaging.ready.wait(), 10)
    relay = OutboxRelay(db, messaging, poll_seconds=0.05)
    relay.start()
    try:
        for n in range(5):
            async with db.transaction() as session:
                await record_event(session, call_started(n), subject_key="A81001")
        await wait_until(lambda: relay_pending_zero(db))

        nats_server.kill()  # NATS gone: writes keep committing, events wait in the outbox
        for n in range(5, 25):
            async with db.transaction() as session:
                await record_event(session, call_started(n), subject_key="A81001")
        await asyncio.sleep(0.5)
        assert not await relay_pending_zero(db)

        nats_server.start()  # same port and store: the client reconnects and the relay catches up
        await wait_until(lambda: relay_pending_zero(db), timeout=20)
        messages = await stream_messages(nats_server.url)
        call_ids = [Envelope.model_validate_json(m.data).data["call_id"] for m in messages]
        assert sorted(call_ids) == sorted(f"call-{n}" for n in range(25))
        assert len(set(call_ids)) == 25
    finally:
        await relay.stop()
        await messaging.close()


async def test_inbox_applies_a_redelivered_event_once(db: Database, nats_server: NatsServer):
    calls: list[str] = []

    async def on_call_started(session, envelope: Envelope, data: CallStarted) -> None:
        calls.append(data.call_id)
        await session.execute(applied_table.insert().values(call_id=data.call_id))

    messaging = Messaging(nats_server.url, name="agent-desk-svc")
    messaging.start()
    consumer = EventConsumer(db, messaging, durable="test-consumer", handlers={CallStarted: on_call_started})
    consumer.start()
    try:
        js = await asyncio.wait_for(messaging.wait_ready(), 10)
        envelope = Envelope.wrap(call_started(7), producer="agent-desk-svc", subject_key="A81001", correlation_id=None)
        payload = envelope.model_dump_json().encode()
        # The same event published twice under different message ids: JetStream keeps both, the inbox drops one.
        await js.publish(envelope.subject, payload, headers={"Nats-Msg-Id": str(uuid.uuid4())})
        await js.publish(envelope.subject, payload, headers={"Nats-Msg-Id": str(uuid.uuid4())})

        await wait_until(lambda: consumer_drained(js, "DESK", "test-consumer"))
        async with db.session() as session:
            rows = (await session.execute(select(applied_table.c.call_id))).scalars().all()
        assert rows == ["call-7"]
        assert calls == ["call-7"]
    finally:
        await consumer.stop()
        await messaging.close()


async def test_a_failing_handler_is_retried_and_then_applied_once(db: Database, nats_server: NatsServer):
    attempts: list[int] = []

    async def flaky(session, envelope: Envelope, data: CallStarted) -> None:
        attempts.append(1)
        await session.execute(applied_table.insert().values(call_id=data.call_id))
        if len(attempts) < 3:
            raise RuntimeError("transient failure")  # rolls back the insert and the inbox row

    messaging = Messaging(nats_server.url, name="agent-desk-svc")
    messaging.start()
    consumer = EventConsumer(db, messaging, durable="flaky", handlers={CallStarted: flaky})
    consumer.start()
    try:
        js = await asyncio.wait_for(messaging.wait_ready(), 10)
        envelope = Envelope.wrap(call_started(9), producer="agent-desk-svc", subject_key="A81001", correlation_id=None)
        await js.publish(envelope.subject, envelope.model_dump_json().encode(), headers={"Nats-Msg-Id": str(envelope.id)})

        async def applied() -> list[str]:
            async with db.session() as session:
                return (await session.execute(select(applied_table.c.call_id))).scalars().all()

        assert await wait_until(applied, timeout=15) == ["call-9"]
        assert len(attempts) == 3
    finally:
        await consumer.stop()
        await messaging.close()


async def test_two_replicas_applying_the_same_event_at_once_apply_it_once(db: Database):
    """Two desk replicas can be handed the same event (a redelivery after an ack was lost): the second waits on
    the first's inbox row and, once the first commits, finds it there instead of applying the event again."""
    first_inside = asyncio.Event()
    let_first_commit = asyncio.Event()
    calls: list[str] = []

    async def slow(session, envelope: Envelope, data: CallStarted) -> None:
        calls.append(data.call_id)
        await session.execute(applied_table.insert().values(call_id=data.call_id))
        if len(calls) == 1:
            first_inside.set()
            await let_first_commit.wait()

    replicas = [EventConsumer(db, Messaging("nats://127.0.0.1:1", name="agent-desk-svc"), durable="replicated",
                              handlers={CallStarted: slow}) for _ in range(2)]
    envelope = Envelope.wrap(call_started(11), producer="agent-desk-svc", subject_key="A81001", correlation_id=None)
    first = asyncio.create_task(replicas[0].apply(envelope, CallStarted, (slow,)))
    await asyncio.wait_for(first_inside.wait(), 10)
    second = asyncio.create_task(replicas[1].apply(envelope, CallStarted, (slow,)))
    await asyncio.sleep(0.3)
    assert not second.done()  # waiting on the first's uncommitted inbox row (or, on SQLite, its write lock)
    let_first_commit.set()
    assert await asyncio.wait_for(first, 10) is True
    assert await asyncio.wait_for(second, 10) is False
    assert calls == ["call-11"]
    async with db.session() as session:
        assert (await session.execute(select(applied_table.c.call_id))).scalars().all() == ["call-11"]


async def test_committed_rows_are_published_straight_away_without_the_poll(db: Database, nats_server: NatsServer):
    """The relay polls the table only at start here: what it publishes afterwards came from the commit handover.
    Nothing of a transaction that rolled back, even after a savepoint inside it had committed, is handed over."""
    messaging = Messaging(nats_server.url, name="agent-desk-svc")
    messaging.start()
    relay = OutboxRelay(db, messaging, poll_seconds=3600)
    relay.start()
    try:
        await asyncio.wait_for(messaging.wait_ready(), 10)
        await asyncio.sleep(0.2)  # the start-up poll has run (and found nothing)
        async with db.session() as session:
            await session.begin()
            savepoint = await session.begin_nested()
            await record_event(session, call_started(1), subject_key="A81001")
            await savepoint.commit()  # written inside the savepoint, then the whole transaction rolls back
            await session.rollback()
        async with db.transaction() as session:
            kept = await record_event(session, call_started(2), subject_key="A81001")
        await wait_until(lambda: relay_pending_zero(db), timeout=10)
        messages = await stream_messages(nats_server.url)
        assert [m.headers["Nats-Msg-Id"] for m in messages] == [str(kept.id)]
    finally:
        await relay.stop()
        await messaging.close()


async def test_a_write_on_a_read_only_sessions_connection_is_refused_and_changes_nothing(db: Database):
    """`execute_write` bypasses the ORM, and with it the ORM's read-only guard: it checks on its own."""
    async with db.transaction() as session:
        await record_event(session, call_started(1), subject_key="A81001")
    async with db.session(read_only=True) as session:
        with pytest.raises(ReadOnlyWrite):
            await execute_write(session, outbox_table.delete())
    async with db.session() as session:
        assert (await session.execute(select(func.count()).select_from(outbox_table))).scalar_one() == 1
