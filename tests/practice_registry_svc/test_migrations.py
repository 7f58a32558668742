"""The alembic migrations build exactly what the models describe, on SQLite and PostgreSQL, and go down cleanly."""

from __future__ import annotations

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine

import services.inbox  # noqa: F401 - kernel tables on kernel_metadata
import services.outbox  # noqa: F401
from practice_registry_svc import models  # noqa: F401
from practice_registry_svc.db import Base
from services.db import kernel_metadata
from services.migrations import upgrade

VERSION_TABLE = "alembic_version_practice_registry_svc"


async def _differences(url: str) -> list:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            def diff(sync_conn):
                context = MigrationContext.configure(sync_conn, opts={
                    "compare_type": True, "version_table": VERSION_TABLE,
                    "include_name": lambda name, kind, _parent: not (kind == "table" and name == VERSION_TABLE)})
                return compare_metadata(context, [Base.metadata, kernel_metadata])
            return await conn.run_sync(diff)
    finally:
        await engine.dispose()


async def _tables(url: str) -> set[str]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
    finally:
        await engine.dispose()


async def test_migrations_match_the_models_and_downgrade_cleanly(database_url: str):
    await asyncio.to_thread(upgrade, "practice_registry_svc", database_url)
    assert await _differences(database_url) == []
    assert {"practices", "pcns", "clinicians", "slot_types", "patients", "api_keys", "outbox", "inbox"} <= (
        await _tables(database_url))

    await asyncio.to_thread(upgrade_to, database_url, "base")
    assert await _tables(database_url) <= {VERSION_TABLE}
    await asyncio.to_thread(upgrade, "practice_registry_svc", database_url)
    assert await _differences(database_url) == []


def upgrade_to(url: str, revision: str) -> None:
    from alembic import command

    from services.migrations import alembic_config

    command.downgrade(alembic_config("practice_registry_svc", url), revision)
