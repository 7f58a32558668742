"""A fetched batch of events is applied in one transaction, still exactly once and in order; a bad message in a
batch sends the batch one by one, so only the bad one is terminated or retried. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timezone

from sqlalchemy import Column, MetaData, String, Table, select

from services.contracts.desk import CallStarted
from services.db import Database
from services.events import Envelope
from services.inbox import Batched, EventConsumer, inbox_table
from services.messaging import Messaging
from services.settings import ServiceSettings
from tests.support.apps import wait_until
from tests.support.natsserver import NatsServer

test_metadata = MetaData()
applied_table = Table("applied_in_batches", test_metadata, Column("call_id", String(50), primary_key=True))


def envelope_for(n: int) -> Envelope:
    data = CallStarted(call_id=f"call-{n}", agent="agent1", started_at=datetime.now(timezone.utc))
    return Envelope.wrap(data, producer="agent-desk-svc", subject_key="A81001", correlation_id=None)


async def test_a_batch_is_applied_once_in_order_and_a_bad_message_is_dealt_with_alone(db: Database,
                                                                                     nats_server: NatsServer):
    order: list[str] = []
    sessions: dict[str, int] = {}
    failures: dict[str, int] = {}  # call id -> failures still to come

    async def on_call_started(session, envelope: Envelope, data: CallStarted) -> None:
        order.append(data.call_id)
        sessions[data.call_id] = id(session)
        # The primary key would fail the transaction if any event were applied twice.
        await session.execute(applied_table.insert().values(call_id=data.call_id))
        if failures.get(data.call_id):
            failures[data.call_id] -= 1
            raise RuntimeError("transient failure")

    messaging = Messaging(nats_server.url, name="agent-desk-svc")
    messaging.start()
    consumer = EventConsumer(db, messaging, durable="batched", handlers={CallStarted: on_call_started})
    try:
        js = await asyncio.wait_for(messaging.wait_ready(), 10)
        # The consumer's own subscription, fetched by hand so the test decides what one batch holds.
        sub = await consumer._subscribe()

        async def publish(envelopes: list[Envelope], malformed_after: int | None = None) -> int:
            sent = 0
            for i, envelope in enumerate(envelopes):
                payload = envelope.model_dump_json().encode()
                await js.publish(envelope.subject, payload, headers={"Nats-Msg-Id": str(uuid.uuid4())})
                sent += 1
                if i % 10 == 3:  # redelivered duplicates (another message id, the same event id)
                    await js.publish(envelope.subject, payload, headers={"Nats-Msg-Id": str(uuid.uuid4())})
                    sent += 1
                if i == malformed_after:
                    await js.publish("desk.call.started.v1", b"{not json", headers={"Nats-Msg-Id": str(uuid.uuid4())})
                    sent += 1
            return sent

        async def applied() -> set[str]:
            async with db.session() as session:
                return set((await session.execute(select(applied_table.c.call_id))).scalars())

        # 1. A clean batch, duplicates included.
        first = [envelope_for(n) for n in range(20)]
        sent = await publish(first)
        batch = await sub.fetch(100, timeout=5)
        assert len(batch) == sent
        await consumer.handle_batch(batch)
        assert await applied() == {f"call-{n}" for n in range(20)}
        assert order == [f"call-{n}" for n in range(20)]  # each once, in the order published
        assert len(set(sessions.values())) == 1  # one transaction for the whole batch

        # 2. A batch holding a malformed message and a handler that fails once: the rest is applied once anyway,
        # the failing event comes back (nak with a delay) and is applied then.
        second = [envelope_for(n) for n in range(20, 40)]
        failures["call-35"] = 1
        sent = await publish(second, malformed_after=5)
        batch = await sub.fetch(100, timeout=5)
        assert len(batch) == sent
        await consumer.handle_batch(batch)
        assert await applied() == {f"call-{n}" for n in range(40)} - {"call-35"}
        retried = await sub.fetch(10, timeout=10)
        assert [Envelope.model_validate_json(m.data).id for m in retried] == [second[15].id]
        await consumer.handle_batch(retried)
        assert await applied() == {f"call-{n}" for n in range(40)}
        assert failures["call-35"] == 0

        # 3. A well-formed batch whose handler fails part-way: the batch rolls back and goes one by one.
        third = [envelope_for(n) for n in range(40, 50)]
        failures["call-46"] = 2  # fails in the batch, then alone, then succeeds
        sent = await publish(third)
        batch = await sub.fetch(100, timeout=5)
        assert len(batch) == sent
        await consumer.handle_batch(batch)
        assert await applied() == {f"call-{n}" for n in range(50)} - {"call-46"}
        await consumer.handle_batch(await sub.fetch(10, timeout=10))
        assert await applied() == {f"call-{n}" for n in range(50)}
        async with db.session() as session:
            inbox = (await session.execute(select(inbox_table.c.event_id).where(
                inbox_table.c.consumer == "batched"))).scalars().all()
        assert sorted(inbox) == sorted(str(e.id) for e in first + second + third)

        async def settled() -> bool:  # an ack is a plain publish: the server may count it a moment later
            info = await js.consumer_info("DESK", "batched")
            return info.num_ack_pending == 0 and info.num_pending == 0

        assert await wait_until(settled, timeout=10)  # acked (or terminated): nothing comes back
        await sub.unsubscribe()
    finally:
        await messaging.close()


async def test_a_batched_handler_gets_the_batchs_events_at_once_each_once_in_order(db: Database,
                                                                                  nats_server: NatsServer):
    calls: list[list[str]] = []

    async def record_all(session, items: list[tuple[Envelope, CallStarted]]) -> None:
        calls.append([data.call_id for _envelope, data in items])
        await session.execute(applied_table.insert(), [{"call_id": data.call_id} for _e, data in items])

    messaging = Messaging(nats_server.url, name="agent-desk-svc")
    messaging.start()
    consumer = EventConsumer(db, messaging, durable="set-based", handlers={CallStarted: Batched(record_all)})
    try:
        js = await asyncio.wait_for(messaging.wait_ready(), 10)
        sub = await consumer._subscribe()
        envelopes = [envelope_for(n) for n in range(12)]
        for envelope in [*envelopes, envelopes[3]]:  # the last one redelivered under another message id
            await js.publish(envelope.subject, envelope.model_dump_json().encode(),
                             headers={"Nats-Msg-Id": str(uuid.uuid4())})
        await consumer.handle_batch(await sub.fetch(100, timeout=5))
        assert calls == [[f"call-{n}" for n in range(12)]]  # one call, the duplicate dropped, in order

        # An event on its own (the one-by-one path) reaches the same handler as a batch of one.
        await js.publish(envelopes[0].subject, envelope_for(12).model_dump_json().encode(),
                         headers={"Nats-Msg-Id": str(uuid.uuid4())})
        await consumer.handle_batch(await sub.fetch(100, timeout=5))
        assert calls[-1] == ["call-12"]
        async with db.session() as session:
            assert len((await session.execute(select(applied_table.c.call_id))).all()) == 13
        await sub.unsubscribe()
    finally:
        await messaging.close()


async def test_a_running_consumer_takes_a_backlog_in_batches_of_the_configured_size(db: Database,
                                                                                  nats_server: NatsServer):
    """A busy process spends about the same time on a batch whatever its size (every await waits its turn on the
    event loop), so a backlog is taken a settings-sized batch at a time: 600 events are two transactions at the
    default of 500, not six of 100."""
    sizes: list[int] = []

    async def record_all(session, items: list[tuple[Envelope, CallStarted]]) -> None:
        sizes.append(len(items))
        await session.execute(applied_table.insert(), [{"call_id": data.call_id} for _e, data in items])

    batch = ServiceSettings().event_batch_size
    assert batch == 500  # the default this test is about
    messaging = Messaging(nats_server.url, name="agent-desk-svc")
    messaging.start()
    consumer = EventConsumer(db, messaging, durable="backlog", handlers={CallStarted: Batched(record_all)}, batch=batch)
    try:
        js = await asyncio.wait_for(messaging.wait_ready(), 10)
        await (await consumer._subscribe()).unsubscribe()  # the durable exists: what follows is its backlog
        for n in range(600):
            envelope = envelope_for(n)
            await js.publish(envelope.subject, envelope.model_dump_json().encode(),
                             headers={"Nats-Msg-Id": str(uuid.uuid4())})
        consumer.start()
        await wait_until(lambda: sum(sizes) >= 600, timeout=20)
        assert sum(sizes) == 600
        assert sizes[0] == 500 and len(sizes) == 2
    finally:
        await consumer.stop()
        await messaging.close()


async def test_one_event_feeds_each_of_its_handlers_once_in_a_batch_and_alone(db: Database, nats_server: NatsServer):
    """A contract handled by several projections (an appointment change moves the dashboard and is kept in the
    audit trail): each gets the event once, in one transaction, on both paths; if one fails, none keeps it."""
    seen: dict[str, list[str]] = {"plain": [], "batched": []}
    fail = {"call-7": 1}

    async def plain(session, envelope: Envelope, data: CallStarted) -> None:
        seen["plain"].append(data.call_id)
        await session.execute(applied_table.insert().values(call_id=f"plain-{data.call_id}"))

    async def record_all(session, items: list[tuple[Envelope, CallStarted]]) -> None:
        seen["batched"].extend(data.call_id for _e, data in items)
        for _e, data in items:
            if fail.get(data.call_id):
                fail[data.call_id] -= 1
                raise RuntimeError("transient failure")
        await session.execute(applied_table.insert(), [{"call_id": f"batched-{d.call_id}"} for _e, d in items])

    messaging = Messaging(nats_server.url, name="agent-desk-svc")
    messaging.start()
    consumer = EventConsumer(db, messaging, durable="several", handlers={CallStarted: (plain, Batched(record_all))})
    try:
        js = await asyncio.wait_for(messaging.wait_ready(), 10)
        sub = await consumer._subscribe()
        for n in range(5):
            envelope = envelope_for(n)
            await js.publish(envelope.subject, envelope.model_dump_json().encode(),
                             headers={"Nats-Msg-Id": str(uuid.uuid4())})
        await consumer.handle_batch(await sub.fetch(100, timeout=5))
        assert seen == {"plain": [f"call-{n}" for n in range(5)], "batched": [f"call-{n}" for n in range(5)]}

        # Alone, with the second handler failing once: the first's row is rolled back with it, then both apply.
        envelope = envelope_for(7)
        await js.publish(envelope.subject, envelope.model_dump_json().encode(),
                         headers={"Nats-Msg-Id": str(uuid.uuid4())})
        await consumer.handle_batch(await sub.fetch(100, timeout=5))
        await consumer.handle_batch(await sub.fetch(100, timeout=10))  # the retry (nak with a delay)

        async with db.session() as session:
            rows = set((await session.execute(select(applied_table.c.call_id))).scalars())
        expected = {f"{kind}-call-{n}" for kind in ("plain", "batched") for n in (0, 1, 2, 3, 4, 7)}
        assert rows == expected
        assert seen["plain"][-2:] == ["call-7", "call-7"] and fail["call-7"] == 0
        await sub.unsubscribe()
    finally:
        await messaging.close()
