"""The kernel's Database: what every service's PostgreSQL sessions are set up with."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from services.db import Database
from services.settings import ServiceSettings


@pytest.mark.parametrize("dialect", ["postgresql"])  # a PostgreSQL planner setting: SQLite has no such thing
async def test_every_pool_plans_with_the_services_random_page_cost(database_url: str):
    cost = ServiceSettings().database_random_page_cost
    assert cost != 4  # PostgreSQL's own default, which would make this test prove nothing
    db = Database(database_url, producer="test", pool_size=1, random_page_cost=cost)
    try:
        for engine in (db.engine, db.background_engine, db.batch_engine):
            async with engine.connect() as connection:
                assert float((await connection.execute(text("SHOW random_page_cost"))).scalar_one()) == cost
    finally:
        await db.dispose()
    plain = Database(database_url, producer="test", pool_size=1)  # None: the server's own
    try:
        async with plain.engine.connect() as connection:
            assert float((await connection.execute(text("SHOW random_page_cost"))).scalar_one()) == 4
    finally:
        await plain.dispose()
