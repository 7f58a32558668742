"""Group commit (services.groupcommit): requests that arrive while a batch is in its transaction are committed
together in the next one, each answered with its own outcome once that commit is done; a batch that fails rolls
back and each of its requests runs on its own. On SQLite every request runs on its own. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, bindparam, insert, select

from services.contracts.desk import CallStarted
from services.db import Database, DriverStatement
from services.errors import Conflict
from services.groupcommit import RUN_ALONE, Batch, GroupCommit
from services.logging import request_id_var
from services.outbox import outbox_table, record_event
from services.timeutil import utcnow

test_metadata = MetaData()
written = Table("group_committed", test_metadata, Column("n", Integer, primary_key=True),
                Column("how", String(10), nullable=False))
_WRITE_EACH = DriverStatement(insert(written).values(n=bindparam("n"), how="batch"))


def started(n: int) -> CallStarted:
    return CallStarted(call_id=f"call-{n}", agent="agent1", started_at=utcnow())


class Recorder:
    """run_batch and run_one for items that are ints: n % 10 == 3 is refused, n % 10 == 7 is left to run alone,
    the rest are written (and their event recorded). `hold` keeps the first batch in its transaction."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.alone: list[int] = []
        self.alone_request_ids: dict[int, str | None] = {}
        self.hold = asyncio.Event()
        self.hold.set()
        self.fail_next_batch = False

    async def run_batch(self, batch: Batch, items: list[int]) -> list[Any]:
        self.batches.append(list(items))
        await self.hold.wait()
        writes = [n for n in items if n % 10 not in (3, 7)]
        await _WRITE_EACH.execute_each(batch.driver, batch.dialect, [{"n": n} for n in writes])
        for n in writes:
            batch.record_event(started(n), subject_key="A81001", correlation_id=f"request-{n}")
        if self.fail_next_batch:
            self.fail_next_batch = False
            raise RuntimeError("the batch fails after writing")
        return [Conflict("no", code="refused") if n % 10 == 3 else RUN_ALONE if n % 10 == 7 else f"batched {n}"
                for n in items]

    async def run_one(self, session, n: int) -> str:  # noqa: ANN001
        self.alone.append(n)
        self.alone_request_ids[n] = request_id_var.get()
        if n % 10 == 3:
            raise Conflict("no", code="refused")
        await session.execute(insert(written).values(n=n, how="alone"))
        await record_event(session, started(n), subject_key="A81001")
        return f"alone {n}"


async def rows(db: Database) -> dict[int, str]:
    async with db.session() as session:
        return dict((await session.execute(select(written.c.n, written.c.how))).all())


async def outbox_call_ids(db: Database) -> list[str]:
    async with db.session() as session:
        payloads = (await session.execute(select(outbox_table.c.payload).order_by(outbox_table.c.seq))).scalars()
        return [orjson.loads(p)["data"]["call_id"] for p in payloads]


async def submit_as_request(commit: GroupCommit, n: int) -> Any:
    request_id_var.set(f"request-{n}")  # what the request's middleware sets
    return await commit.submit(n)


async def submit_all(commit: GroupCommit, items: list[int]) -> list[Any]:
    return await asyncio.gather(*(submit_as_request(commit, n) for n in items), return_exceptions=True)


async def test_requests_that_arrive_meanwhile_commit_together_and_each_gets_its_own_outcome(db: Database) -> None:
    recorder = Recorder()
    handed: list[list[str]] = []
    db.on_events_committed = lambda committed: handed.append([r["event_id"] for r in committed])
    commit = GroupCommit(db, name="test", run_batch=recorder.run_batch, run_one=recorder.run_one, max_batch=8)

    recorder.hold.clear()  # the first request's batch stays in its transaction while 11 more arrive
    first = asyncio.ensure_future(commit.submit(1))
    await asyncio.sleep(0.2)
    rest = asyncio.ensure_future(submit_all(commit, list(range(2, 13))))
    await asyncio.sleep(0.2)
    if db.dialect == "postgresql":
        assert recorder.batches == [[1]] and await rows(db) == {}  # nothing is visible before the commit
        assert handed == []
    recorder.hold.set()
    outcomes = [await first, *await rest]

    expected: dict[int, Any] = {}
    for n in range(1, 13):
        if n % 10 == 3:
            assert isinstance(outcomes[n - 1], Conflict) and outcomes[n - 1].code == "refused"
        else:
            batched = db.dialect == "postgresql" and n % 10 != 7
            assert outcomes[n - 1] == (f"batched {n}" if batched else f"alone {n}")
            expected[n] = "batch" if batched else "alone"
    assert await rows(db) == expected
    if db.dialect == "postgresql":
        # The 11 that came meanwhile went in the next batches (at most 8 a batch), in arrival order.
        assert recorder.batches == [[1], [2, 3, 4, 5, 6, 7, 8, 9], [10, 11, 12]]
        assert sorted(recorder.alone) == [7]
    else:
        assert recorder.batches == [] and recorder.alone == list(range(1, 13))
    # Run on its own after a batch, a request is in its own context (its request id), not the batch's.
    assert all(recorder.alone_request_ids[n] == f"request-{n}" for n in recorder.alone if n != 1)
    # Every written item has its event, committed with it and handed to the relay once committed.
    assert sorted(await outbox_call_ids(db)) == sorted(f"call-{n}" for n in expected)
    assert sum(len(ids) for ids in handed) == len(expected)


@pytest.mark.parametrize("dialect", ["postgresql"])
async def test_a_batch_takes_one_request_per_key_and_the_others_run_after_its_commit(db: Database) -> None:
    recorder = Recorder()
    seen_when_alone: dict[int, dict[int, str]] = {}

    async def run_one(session, n: int) -> str:  # noqa: ANN001
        seen_when_alone[n] = await rows(db)
        return await recorder.run_one(session, n)

    # The key is what a request changes (a slot, a call): here the hundreds.
    commit = GroupCommit(db, name="test", run_batch=recorder.run_batch, run_one=run_one, key=lambda n: n // 100)
    recorder.hold.clear()
    first = asyncio.ensure_future(commit.submit(1))
    await asyncio.sleep(0.2)
    rest = asyncio.ensure_future(submit_all(commit, [101, 102, 201, 104, 202]))
    await asyncio.sleep(0.1)
    recorder.hold.set()
    outcomes = [await first, *await rest]

    assert recorder.batches == [[1], [101, 201]]
    assert outcomes == ["batched 1", "batched 101", "alone 102", "batched 201", "alone 104", "alone 202"]
    # Each ran on its own after the batch that took its key's first request had committed.
    assert all(seen_when_alone[n][n // 100 * 100 + 1] == "batch" for n in (102, 104, 202))


@pytest.mark.parametrize("dialect", ["postgresql"])
async def test_a_batch_that_fails_rolls_back_and_each_request_runs_on_its_own(db: Database) -> None:
    recorder = Recorder()
    handed: list[str] = []
    db.on_events_committed = lambda committed: handed.extend(r["event_id"] for r in committed)
    commit = GroupCommit(db, name="test", run_batch=recorder.run_batch, run_one=recorder.run_one)
    recorder.fail_next_batch = True
    recorder.hold.clear()
    first = asyncio.ensure_future(commit.submit(20))
    await asyncio.sleep(0.2)
    rest = asyncio.ensure_future(submit_all(commit, [21, 22, 23]))
    await asyncio.sleep(0.1)
    recorder.hold.set()
    outcomes = [await first, *await rest]

    assert recorder.batches[0] == [20]  # it failed after writing: its row and event were rolled back
    assert outcomes[0] == "alone 20"
    assert outcomes[1:3] == ["batched 21", "batched 22"] and isinstance(outcomes[3], Conflict)
    assert await rows(db) == {20: "alone", 21: "batch", 22: "batch"}
    assert sorted(await outbox_call_ids(db)) == ["call-20", "call-21", "call-22"]
    assert len(handed) == 3


@pytest.mark.parametrize("dialect", ["postgresql"])
async def test_a_batch_does_not_wait_for_a_turn_at_the_request_pool(db: Database) -> None:
    """Batches have connections of their own: with every request turn taken (searches, at the 8am peak), a
    batch of bookings still commits at once instead of queueing behind them."""
    recorder = Recorder()
    commit = GroupCommit(db, name="test", run_batch=recorder.run_batch, run_one=recorder.run_one)
    let_go = asyncio.Event()
    holding = 0

    async def hold_a_turn() -> None:
        nonlocal holding
        async with db.request_slot(), db.read_transaction() as session:
            await session.execute(select(1))
            holding += 1
            await let_go.wait()

    holders = [asyncio.create_task(hold_a_turn()) for _ in range(db.engine.pool.size())]
    try:
        for _ in range(500):  # bounded: a holder that failed must not hang the suite
            if holding == len(holders):
                break
            await asyncio.sleep(0.01)
        assert holding == len(holders) and db.engine.pool.checkedout() == len(holders)
        outcomes = await asyncio.wait_for(submit_all(commit, [31, 32]), 5)
        assert outcomes == ["batched 31", "batched 32"] and recorder.alone == []
        async with db.session(background=True) as session:  # the request pool is still all taken
            assert dict((await session.execute(select(written.c.n, written.c.how))).all()) == {31: "batch",
                                                                                              32: "batch"}
    finally:
        let_go.set()
        await asyncio.gather(*holders)
