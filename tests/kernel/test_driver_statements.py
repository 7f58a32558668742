"""Statements run straight on asyncpg's connection (services.db.DriverStatement, driver_rows): the same values
SQLAlchemy would send (literals in the statement, JSON and bytes converted), a parameter without a value refused,
every execution of a batch in order; `driver_rows` is `select_rows` where it cannot use the driver."""

from __future__ import annotations

import pytest
from sqlalchemy import JSON, Column, Integer, LargeBinary, MetaData, String, Table, bindparam, insert, select

from services.db import Database, DriverStatement, driver_rows, select_rows

test_metadata = MetaData()
things = Table("driver_things", test_metadata, Column("n", Integer, primary_key=True),
               Column("kind", String(10), nullable=False), Column("body", JSON), Column("blob", LargeBinary))
_ADD = DriverStatement(insert(things).values(n=bindparam("n"), kind="made", body=bindparam("body"),
                                             blob=bindparam("blob")).returning(things.c.n, things.c.kind))
_BY_N = DriverStatement(select(things.c.n, things.c.kind, things.c.blob).where(things.c.n == bindparam("p_n")))


@pytest.mark.parametrize("dialect", ["postgresql"])
async def test_a_batch_of_executions_sends_what_sqlalchemy_would(db: Database) -> None:
    async with db.driver_transaction() as driver:
        rows = await _ADD.fetch_each(driver, db.engine.dialect, [
            {"n": n, "body": {"n": n, "name": "Zoë"}, "blob": bytes([n])} for n in (3, 1, 2)])
        assert [tuple(r) for r in rows] == [(3, "made"), (1, "made"), (2, "made")]  # in the order sent
        with pytest.raises(KeyError, match="'blob'"):
            _ADD.args(db.engine.dialect, {"n": 9, "body": None})
    async with db.session() as session:  # committed, and read back through SQLAlchemy as it would have written
        stored = (await session.execute(select(things).order_by(things.c.n))).all()
    assert [tuple(r) for r in stored] == [(n, "made", {"n": n, "name": "Zoë"}, bytes([n])) for n in (1, 2, 3)]


@pytest.mark.parametrize("dialect", ["postgresql"])
async def test_a_driver_transaction_that_fails_leaves_nothing(db: Database) -> None:
    with pytest.raises(RuntimeError):
        async with db.driver_transaction() as driver:
            await _ADD.execute_each(driver, db.engine.dialect, [{"n": 7, "body": None, "blob": None}])
            raise RuntimeError("after writing")
    async with db.session() as session:
        assert (await session.execute(select(things))).all() == []


async def test_driver_rows_reads_as_select_rows_does(db: Database) -> None:
    async with db.transaction() as session:
        await session.execute(insert(things), [{"n": 1, "kind": "a", "blob": b"x"}, {"n": 2, "kind": "b", "blob": None}])
    async with db.session(read_only=True) as session:  # the driver on PostgreSQL
        read = [tuple(r) for r in await driver_rows(session, _BY_N, {"p_n": 1})]
    async with db.session() as session:  # a session that writes: through SQLAlchemy, inside its transaction
        written = [tuple(r) for r in await driver_rows(session, _BY_N, {"p_n": 1})]
        expected = [tuple(r) for r in await select_rows(session, _BY_N.statement, {"p_n": 1})]
    assert read == written == expected == [(1, "a", b"x")]
