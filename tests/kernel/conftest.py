"""A kernel-only database for the outbox, inbox and event-log tests (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from services.db import Database, kernel_metadata


@pytest.fixture
async def db(database_url: str, request: pytest.FixtureRequest) -> AsyncIterator[Database]:
    """The kernel's tables, and the test module's own `test_metadata` tables if it declares any."""
    database = Database(database_url, producer="agent-desk-svc")
    async with database.engine.begin() as conn:
        await conn.run_sync(kernel_metadata.create_all)
        module_tables = getattr(request.module, "test_metadata", None)
        if module_tables is not None:
            await conn.run_sync(module_tables.create_all)
    yield database
    await database.dispose()
