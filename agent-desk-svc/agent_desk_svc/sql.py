"""Database mechanics this service needs beyond the request session: a dialect-neutral upsert for projections,
and short transactions for the few paths that must not ride on the request's session (sign-in)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import ColumnElement, Table
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.db import Database, sqlite_write_intent


async def upsert(session: AsyncSession, table: Table, values: Mapping[str, Any], *, key: list[str],
                 update: Callable[[Any], Mapping[str, Any]],
                 where: Callable[[Any], ColumnElement[bool]] | None = None) -> None:
    """INSERT ... ON CONFLICT (key) DO UPDATE, atomic on both dialects (replicas apply events concurrently).
    `update` and `where` receive the proposed row (`excluded`)."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = insert(table).values(**values)
    await session.execute(statement.on_conflict_do_update(
        index_elements=key, set_=dict(update(statement.excluded)),
        where=where(statement.excluded) if where is not None else None))


@asynccontextmanager
async def read_transaction(db: Database) -> AsyncIterator[AsyncSession]:
    """A read-only transaction that never takes SQLite's write lock."""
    token = sqlite_write_intent.set(False)
    try:
        async with db.session() as session:  # closing ends the transaction; loaded objects stay readable
            yield session
    finally:
        sqlite_write_intent.reset(token)


@asynccontextmanager
async def write_transaction(db: Database) -> AsyncIterator[AsyncSession]:
    token = sqlite_write_intent.set(True)
    try:
        async with db.transaction() as session:
            yield session
    finally:
        sqlite_write_intent.reset(token)


async def intend_to_write() -> None:
    """A dependency for GET routes that write (an audit record of the read): on SQLite their transaction must
    start as a writer, or taking the write lock later can fail at once."""
    sqlite_write_intent.set(True)
