"""Group commit: many concurrent requests that each make one small change of the same kind (a booking) share one
transaction, on PostgreSQL. While a batch is in its transaction the next requests queue; when it commits, they
all go in the next one. A lone request waits for nobody: a batch starts as soon as the one before has finished.

The batch's function runs its statements for every request at once on the driver's connection (see
`services.db.DriverStatement`) and returns one outcome per request: its result, the error to answer it with, or
RUN_ALONE (an unusual case it leaves to the one-request path). The events it records go into the outbox in the
same transaction and to the relay once it commits; a request is answered only after that commit. If the batch
fails as a whole (a deadlock, the database away, a value PostgreSQL refuses), it rolls back and each request
runs on its own, so one request cannot fail the others and the errors are the usual ones (409, 422, 503).

The one-request path is also what runs on SQLite, which has one writer and nothing to gain."""

from __future__ import annotations

import asyncio
import contextvars
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import asyncpg
from sqlalchemy import Dialect
from sqlalchemy.ext.asyncio import AsyncSession

from services.db import Database
from services.events import Envelope, EventData
from services.logging import get_logger
from services.metrics import GROUP_COMMIT_FALLBACKS, GROUP_COMMIT_SIZE
from services.outbox import INSERT_ON_DRIVER, outbox_row

log = get_logger(__name__)

Item = TypeVar("Item")
Result = TypeVar("Result")


class _RunAlone:
    def __repr__(self) -> str:
        return "RUN_ALONE"


RUN_ALONE = _RunAlone()


@dataclass
class Batch:
    """What a batch's function works with: the driver's connection, inside the batch's transaction."""

    driver: asyncpg.Connection
    dialect: Dialect
    producer: str
    rows: list[dict[str, Any]] = field(default_factory=list)

    def record_event(self, event: EventData, *, subject_key: str, correlation_id: str | None) -> Envelope:
        """As services.outbox.record_event: the event is written with the batch and committed with it."""
        envelope, row = outbox_row(event, producer=self.producer, subject_key=subject_key,
                                   correlation_id=correlation_id)
        self.rows.append(row)
        return envelope


class GroupCommit(Generic[Item, Result]):
    """`key` names what an item changes (its slot, its call): a batch gets one item per key, and a later item with
    the same key runs on its own after the batch, so it sees the first one's change (the second booking of a slot
    is refused as one booking would be)."""

    def __init__(self, db: Database, *, name: str,
                 run_batch: Callable[[Batch, list[Item]], Awaitable[list[Result | BaseException | _RunAlone]]],
                 run_one: Callable[[AsyncSession, Item], Awaitable[Result]], max_batch: int = 100,
                 key: Callable[[Item], Hashable] | None = None) -> None:
        self.db = db
        self.name = name
        self.run_batch = run_batch
        self.run_one = run_one
        self.max_batch = max_batch
        self.key = key
        self.batching = db.dialect == "postgresql"
        self._waiting: deque[tuple[Item, asyncio.Future[Result], contextvars.Context]] = deque()
        self._worker: asyncio.Task[None] | None = None
        self._alone_tasks: set[asyncio.Task[None]] = set()

    async def submit(self, item: Item) -> Result:
        """The item's result once its transaction has committed; raises the error it was refused with."""
        if not self.batching:
            return await self.alone(item)
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        # The request's own context (its request id, for its log lines and its events' correlation) goes with it,
        # so that its one-request path runs as the request itself would.
        self._waiting.append((item, future, contextvars.copy_context()))
        if self._worker is None:
            # A context of its own: the task serves every request, not the one whose arrival started it.
            self._worker = asyncio.create_task(self._work(), name=f"group-commit-{self.name}",
                                               context=contextvars.Context())
        return await future

    async def alone(self, item: Item) -> Result:
        """The one-request path: the item in a transaction of its own."""
        async with self.db.request_slot(), self.db.write_transaction() as session:
            return await self.run_one(session, item)

    async def _work(self) -> None:
        try:
            while self._waiting:
                taken = [self._waiting.popleft() for _ in range(min(len(self._waiting), self.max_batch))]
                try:
                    await self._run([entry for entry in taken if not entry[1].cancelled()])
                except Exception as exc:  # noqa: BLE001 - never strand the requests queued behind
                    log.error("group_commit.failed", name=self.name, error_type=type(exc).__name__)
                    for _item, future, _context in taken:
                        _settle(future, exception=exc)
        finally:
            self._worker = None

    async def _run(self, taken: list[tuple[Item, asyncio.Future[Result], contextvars.Context]]) -> None:
        if not taken:
            return
        GROUP_COMMIT_SIZE.labels(self.name).observe(len(taken))
        items = [item for item, _future, _context in taken]
        outcomes: list[Any] = [RUN_ALONE] * len(items)
        firsts = self._first_of_each_key(items)
        try:
            async with self.db.driver_transaction() as driver:
                batch = Batch(driver, self.db.engine.dialect, self.db.producer)
                batched = await self.run_batch(batch, [items[i] for i in firsts])
                if len(batched) != len(firsts):
                    raise RuntimeError(f"{self.name}: {len(batched)} outcomes for {len(firsts)} items")
                await INSERT_ON_DRIVER.execute_each(driver, batch.dialect, batch.rows)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - rolled back: each request runs on its own
            GROUP_COMMIT_FALLBACKS.labels(self.name).inc()
            log.warning("group_commit.fallback", name=self.name, size=len(items), error_type=type(exc).__name__)
        else:
            self.db.events_committed(batch.rows)
            for i, outcome in zip(firsts, batched, strict=True):
                outcomes[i] = outcome
        for (item, future, context), outcome in zip(taken, outcomes, strict=True):
            if outcome is RUN_ALONE:
                # Not in the worker's way (the next batch need not wait for these), in the request's own context.
                task = asyncio.create_task(self._alone_into(item, future), context=context)
                self._alone_tasks.add(task)
                task.add_done_callback(self._alone_tasks.discard)
            elif isinstance(outcome, BaseException):
                _settle(future, exception=outcome)
            else:
                _settle(future, result=outcome)

    def _first_of_each_key(self, items: list[Item]) -> list[int]:
        """The positions of the items the batch takes: each key's first."""
        if self.key is None:
            return list(range(len(items)))
        first: dict[Hashable, int] = {}
        for i, item in enumerate(items):
            first.setdefault(self.key(item), i)
        return list(first.values())

    async def _alone_into(self, item: Item, future: asyncio.Future[Result]) -> None:
        try:
            _settle(future, result=await self.alone(item))
        except Exception as exc:  # noqa: BLE001 - the request's own error (409, 503, ...) goes to its caller
            _settle(future, exception=exc)


def _settle(future: asyncio.Future[Any], *, result: Any = None, exception: BaseException | None = None) -> None:
    if future.done():  # the caller went away (its request was cancelled)
        return
    if exception is not None:
        future.set_exception(exception)
    else:
        future.set_result(result)
