"""Async engine, one session per request, and the SQLite settings that make it safe under concurrency."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, NamedTuple

from collections.abc import Callable, Mapping, Sequence

import asyncpg
from sqlalchemy import ColumnElement, Dialect, MetaData, Table, event, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import ORMExecuteState, Session

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Tables the kernel owns inside every service's database (outbox, inbox).
kernel_metadata = MetaData(naming_convention=NAMING_CONVENTION)

# SQLite allows one writer at a time. A deferred transaction that reads and then writes can fail at once with
# "database is locked" (the busy handler cannot help a lock upgrade), so write transactions start IMMEDIATE.
# Read-only requests (GET) clear this flag and start a plain deferred transaction that never blocks writers.
sqlite_write_intent: contextvars.ContextVar[bool] = contextvars.ContextVar("sqlite_write_intent", default=True)


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


class ReadOnlyWrite(RuntimeError):
    """A request that was opened read-only tried to write: declare it with `WritesOnRead` (services.app)."""


class ReadOnlySession(Session):
    """The session of a request that only reads. On PostgreSQL its connection runs in autocommit: each statement
    is its own transaction, which under READ COMMITTED sees exactly what it would inside BEGIN ... COMMIT (every
    statement takes a fresh snapshot either way), without the two round trips. Because nothing would hold
    several writes together, any write is refused, on SQLite too, so the tests catch it on both."""


@event.listens_for(ReadOnlySession, "do_orm_execute")
def _refuse_statement_writes(state: ORMExecuteState) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        raise ReadOnlyWrite("a read-only request ran a write statement")


@event.listens_for(ReadOnlySession, "before_flush")
def _refuse_flushes(session: Session, _context: Any, _instances: Any) -> None:
    if session.new or session.dirty or session.deleted:
        raise ReadOnlyWrite("a read-only request changed rows")


# How long a request waits for one of the pool's connections before it is answered 503 (SQLAlchemy's default).
POOL_TIMEOUT_SECONDS = 30.0

# session.info key of the callback that takes the outbox rows of a transaction that has just committed.
ON_EVENTS_COMMITTED = "outbox_on_events_committed"


class Database:
    """The engine and session factory of one service's own database.

    Background work (the outbox relay, event consumers) has connections of its own: sharing the request pool,
    the relay queued behind every waiting request at the 8am peak and events fell many seconds behind. So do
    group-commit batches (`driver_transaction`): a batch carries many requests' writes, and taking its turn at the
    request pool it queued behind the searches holding every turn (p99 158 ms before its BEGIN in a flow rush)."""

    def __init__(self, url: str, *, producer: str, pool_size: int = 10, pool_pre_ping: bool = False,
                 echo: bool = False, background_pool_size: int = 2, batch_pool_size: int = 2,
                 random_page_cost: float | None = None) -> None:
        self.url = url
        self.producer = producer
        # PostgreSQL: the planner's cost of reading a page at random, for this service's sessions (None: the
        # server's own). See ServiceSettings.database_random_page_cost.
        settings = {"random_page_cost": str(random_page_cost)} if random_page_cost is not None else {}
        self.engine: AsyncEngine = _engine(url, pool_size, pool_pre_ping, echo, settings)
        self.background_engine: AsyncEngine = _engine(url, background_pool_size, pool_pre_ping, echo, settings)
        # One connection per group commit (each runs one batch at a time): a service has two at most.
        self.batch_engine: AsyncEngine = _engine(url, batch_pool_size, pool_pre_ping, echo, settings)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False, class_=AsyncSession)
        # SQLite keeps its deferred read transaction (it never blocks writers there); the pool is shared.
        read_engine = self.engine if is_sqlite(url) else self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self.read_sessionmaker = async_sessionmaker(read_engine, expire_on_commit=False, class_=AsyncSession,
                                                    sync_session_class=ReadOnlySession)
        self.background_sessionmaker = async_sessionmaker(self.background_engine, expire_on_commit=False,
                                                          class_=AsyncSession)
        # Set by the outbox relay (services.outbox): it publishes committed rows without reading them back.
        self.on_events_committed: Callable[[list[dict[str, Any]]], None] | None = None
        self._request_slots = asyncio.Semaphore(pool_size)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def session(self, *, background: bool = False, read_only: bool = False) -> AsyncSession:
        if read_only:
            session = self.read_sessionmaker()
        else:
            session = (self.background_sessionmaker if background else self.sessionmaker)()
        session.info["producer"] = self.producer
        session.info[ON_EVENTS_COMMITTED] = self.events_committed
        return session

    def events_committed(self, rows: list[dict[str, Any]]) -> None:
        """Outbox rows of a transaction that has just committed, for the relay to publish without reading them."""
        if self.on_events_committed is not None:
            self.on_events_committed(rows)

    @asynccontextmanager
    async def request_slot(self) -> AsyncIterator[None]:
        """A turn at the request pool, first come first served (one turn per pooled connection). SQLAlchemy's pool
        hands a connection given back to whichever request asks next, even one that has just arrived, and a waiter
        that loses it joins the back of the queue again: in a closed-loop rush a few bookings waited 8 s while most
        took 0.1 s. asyncio's semaphore does not let a newcomer pass its waiters. Raises TimeoutError (503) after
        POOL_TIMEOUT_SECONDS, as the pool would."""
        if self._request_slots.locked():
            await asyncio.wait_for(self._request_slots.acquire(), POOL_TIMEOUT_SECONDS)
        else:
            await self._request_slots.acquire()  # free: returns at once, without wait_for's timer and task
        try:
            yield
        finally:
            self._request_slots.release()

    @asynccontextmanager
    async def transaction(self, *, background: bool = False) -> AsyncIterator[AsyncSession]:
        """A session committed once when the block ends without error (for consumers and background jobs)."""
        async with self.session(background=background) as session:
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise

    @asynccontextmanager
    async def read_transaction(self) -> AsyncIterator[AsyncSession]:
        """A read-only session that never takes SQLite's write lock."""
        token = sqlite_write_intent.set(False)
        try:
            async with self.session() as session:
                yield session
        finally:
            sqlite_write_intent.reset(token)

    @asynccontextmanager
    async def write_transaction(self) -> AsyncIterator[AsyncSession]:
        """A transaction of its own (outside the request's), committed when the block ends without error."""
        token = sqlite_write_intent.set(True)
        try:
            async with self.transaction() as session:
                yield session
        finally:
            sqlite_write_intent.reset(token)

    @asynccontextmanager
    async def driver_transaction(self) -> AsyncIterator[asyncpg.Connection]:
        """A transaction on the asyncpg connection under one of the batch pool's connections (PostgreSQL only):
        for a group commit's statements, run with `DriverStatement` many at a time. SQLAlchemy never begins a
        transaction of its own on it, so giving it back to the pool sends nothing. A connection that broke is
        discarded, not pooled."""
        async with self.batch_engine.connect() as connection:
            driver = (await connection.get_raw_connection()).driver_connection
            try:
                async with driver.transaction():
                    yield driver
            except (OSError, asyncpg.InterfaceError, asyncpg.ConnectionDoesNotExistError):
                await connection.invalidate()
                raise

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()
        await self.background_engine.dispose()
        await self.batch_engine.dispose()


def _engine(url: str, pool_size: int, pool_pre_ping: bool, echo: bool,
            server_settings: Mapping[str, str]) -> AsyncEngine:
    kwargs: dict[str, Any] = {"echo": echo}
    if is_sqlite(url):
        kwargs["connect_args"] = {"timeout": 15}
    else:
        kwargs.update(pool_size=pool_size, max_overflow=0, pool_timeout=POOL_TIMEOUT_SECONDS,
                      pool_pre_ping=pool_pre_ping, pool_recycle=1800,
                      connect_args={"server_settings": dict(server_settings)})
    engine = create_async_engine(url, **kwargs)
    if is_sqlite(url):
        _configure_sqlite(engine)
    return engine


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take over transaction control from the driver so BEGIN IMMEDIATE can be issued below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=15000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if sqlite_write_intent.get() else "BEGIN")


def refuse_writes_on_read_only(session: Session) -> None:
    """The guard above sees the ORM's statements only: code that writes on the session's connection asks here."""
    if isinstance(session, ReadOnlySession):
        raise ReadOnlyWrite("a read-only request wrote on its connection")


async def execute_write(session: AsyncSession, statement: Any, params: Mapping[str, Any] | None = None) -> None:
    """A Core INSERT, UPDATE or DELETE on the session's connection (inside its transaction), without the ORM's
    per-execution work; refused in a read-only request, as the ORM's statements are."""
    refuse_writes_on_read_only(session.sync_session)
    await (await session.connection()).execute(statement, params)


async def select_rows(session: AsyncSession, statement: Any, params: Mapping[str, Any] | None = None) -> list[Any]:
    """The rows of a SELECT of columns, run on the session's connection (inside its transaction). A query that
    selects columns, not objects, has no use for the ORM's per-execution work (its compile state and its row
    loading), which cost about as much as the driver's own round trip on a search's hot path."""
    connection = await session.connection()
    return list((await connection.execute(statement, params)).all())


class _Bound(NamedTuple):
    name: str
    required: bool
    literal: Any
    processor: Callable[[Any], Any] | None


class DriverStatement:
    """A Core statement run straight on asyncpg's connection, compiled once, for a batch of many requests' rows
    sent in one go: `fetch_each` and `execute_each` send every parameter set of the batch in one pipelined round
    trip (asyncpg's fetchmany and executemany) instead of a round trip and SQLAlchemy's per-execution work each.
    Values are converted as SQLAlchemy converts them (its bind processors: JSON, bytes) and literal values in the
    statement are filled in. Rows come back as asyncpg records, as the driver returns them: select only columns
    SQLAlchemy would not convert on the way out either (text, numbers, timestamps, booleans; no JSON)."""

    def __init__(self, statement: Any) -> None:
        self.statement = statement
        self._compiled: tuple[str, list[_Bound]] | None = None

    def compile(self, dialect: Dialect) -> tuple[str, list[_Bound]]:
        if self._compiled is None:
            compiled = self.statement.compile(dialect=dialect)
            parts = []
            for name in compiled.positiontup or ():
                bind = compiled.binds[name]
                parts.append(_Bound(name, bind.required, bind.value,
                                    bind.type.dialect_impl(dialect).bind_processor(dialect)))
            self._compiled = (compiled.string, parts)
        return self._compiled

    def args(self, dialect: Dialect, params: Mapping[str, Any]) -> tuple[Any, ...]:
        """The positional values of one execution; a parameter without a value is an error, as in SQLAlchemy."""
        _sql, parts = self.compile(dialect)
        values = []
        for part in parts:
            if part.name in params:
                value = params[part.name]
            elif part.required:
                raise KeyError(f"a value is required for bind parameter {part.name!r}")
            else:
                value = part.literal
            values.append(part.processor(value) if part.processor is not None else value)
        return tuple(values)

    async def fetch_each(self, driver: asyncpg.Connection, dialect: Dialect,
                         params: Sequence[Mapping[str, Any]]) -> list[asyncpg.Record]:
        """Every row of every execution, in the order of `params` (so a statement that returns one row per
        execution, or a key of the row it touched, tells the executions apart)."""
        if not params:
            return []
        return await driver.fetchmany(self.compile(dialect)[0], [self.args(dialect, p) for p in params])

    async def execute_each(self, driver: asyncpg.Connection, dialect: Dialect,
                           params: Sequence[Mapping[str, Any]]) -> None:
        if params:
            await driver.executemany(self.compile(dialect)[0], [self.args(dialect, p) for p in params])


async def driver_rows(session: AsyncSession, statement: DriverStatement,
                      params: Mapping[str, Any] | None = None) -> Sequence[Any]:
    """`select_rows` of a statement used on a hot path, run straight on asyncpg's connection in a read-only request
    on PostgreSQL (its connection is in autocommit, so there is no transaction to stay inside): about a fifth of a
    wide slot search's CPU was SQLAlchemy's work per execution. Rows are tuples either way (asyncpg records
    there). Elsewhere, and in a session that writes, it is `select_rows`."""
    if not isinstance(session.sync_session, ReadOnlySession) or session.bind.dialect.name != "postgresql":
        return await select_rows(session, statement.statement, params)
    driver = (await (await session.connection()).get_raw_connection()).driver_connection
    dialect = session.bind.dialect
    return await driver.fetch(statement.compile(dialect)[0], *statement.args(dialect, params or {}))


def dialect_insert(dialect: str) -> Callable[[Table], Any]:
    """The dialect's own INSERT construct, which has ON CONFLICT (PostgreSQL and SQLite alike)."""
    return pg_insert if dialect == "postgresql" else sqlite_insert


async def upsert(session: AsyncSession, table: Table, values: Mapping[str, Any] | list[Mapping[str, Any]], *,
                 key: list[str], update: Callable[[Any], Mapping[str, Any]] | None = None,
                 where: Callable[[Any], ColumnElement[bool]] | None = None) -> None:
    """INSERT ... ON CONFLICT (key) DO UPDATE (or DO NOTHING without `update`), atomic on both dialects.
    `update` and `where` receive the proposed row (`excluded`). A list of rows is sent as one statement with many
    parameter sets: rows written into the statement as literal VALUES could not be cached, and compiling a
    batch's statement anew cost more than running it."""
    if not values:
        return
    insert = dialect_insert(session.get_bind().dialect.name)(table)
    if update is None:
        statement = insert.on_conflict_do_nothing(index_elements=key)
    else:
        statement = insert.on_conflict_do_update(index_elements=key, set_=dict(update(insert.excluded)),
                                                 where=where(insert.excluded) if where is not None else None)
    await session.execute(statement, values if isinstance(values, list) else dict(values))
