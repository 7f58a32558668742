"""The alembic migration builds the schema the models describe, on SQLite and PostgreSQL, including the partial
unique index that allows one active appointment per slot."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import booking_svc.models  # noqa: F401
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from booking_svc.appointments.models import Appointment
from booking_svc.db import Base
from sqlalchemy import MetaData, insert, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import create_async_engine

import services.inbox  # noqa: F401
import services.outbox  # noqa: F401
from services.db import kernel_metadata
from services.migrations import upgrade


def appointment(n: int, status: str) -> dict:
    now = datetime(2027, 1, 11, tzinfo=timezone.utc)
    return {"id": f"a{n}", "booking_reference": f"REF0000{n}", "status": status, "version": 1, "ods_code": "A81001",
            "registered_ods_code": "A81001", "nhs_number": "9434765919", "slot_id": "slot-1", "slot_start": now,
            "slot_end": now, "clinician_id": "C1", "slot_type": "ROUTINE", "channel": "in_person",
            "booked_by": "t", "booked_by_role": "agent", "created_at": now, "updated_at": now}


async def test_migrate_builds_the_models_schema_and_the_partial_unique_index(database_url: str):
    await asyncio.to_thread(upgrade, "booking_svc", database_url)
    await asyncio.to_thread(upgrade, "booking_svc", database_url)  # at head: a no-op
    engine = create_async_engine(database_url)
    try:
        combined = MetaData()
        for table in [*Base.metadata.tables.values(), *kernel_metadata.tables.values()]:
            table.to_metadata(combined)
        async with engine.connect() as conn:
            context = {"version_table": "alembic_version_booking_svc"}
            differences = await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync, opts=context), combined))
            if engine.dialect.name == "sqlite":
                [definition] = (await conn.execute(text(
                    "SELECT sql FROM sqlite_master WHERE name = 'uq_appointments_active_slot'"))).scalars()
            else:
                [definition] = (await conn.execute(text(
                    "SELECT indexdef FROM pg_indexes WHERE indexname = 'uq_appointments_active_slot'"))).scalars()
        assert differences == []
        assert "UNIQUE" in definition.upper() and "WHERE" in definition.upper() and "did_not_attend" in definition

        table = Appointment.__table__
        async with engine.begin() as conn:
            await conn.execute(insert(table), [appointment(1, "cancelled"), appointment(2, "displaced"),
                                               appointment(3, "booked")])
        with pytest.raises(IntegrityError):
            async with engine.begin() as conn:
                await conn.execute(insert(table), [appointment(4, "arrived")])
    finally:
        await engine.dispose()


@pytest.mark.parametrize("dialect", ["postgresql"])  # CONCURRENTLY, and invalid indexes, are PostgreSQL's
async def test_a_slot_index_whose_concurrent_build_failed_is_built_again(database_url: str):
    """The open-slot indexes are built CONCURRENTLY so bookings go on meanwhile; a build that fails leaves an
    invalid index that no query uses. Upgrading again must replace it, not take its name for the work done."""
    await asyncio.to_thread(upgrade, "booking_svc", database_url, "cec4069cce55")
    engine = create_async_engine(database_url, isolation_level="AUTOCOMMIT")
    validity = text("SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                    "WHERE c.relname LIKE 'ix_slots_open_%' ORDER BY 1")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(
                "INSERT INTO slots (id, ods_code, session_id, clinician_id, slot_type, start_at, end_at, status) "
                "VALUES ('a', 'A81001', 's', 'C1', 'ROUTINE', now(), now(), 'free'), "
                "('b', 'A81001', 's', 'C1', 'ROUTINE', now(), now(), 'free')"))
            with pytest.raises(IntegrityError):  # a build that fails half way, as one cut off would
                await conn.execute(text("CREATE UNIQUE INDEX CONCURRENTLY ix_slots_open_start_at "
                                        "ON slots (ods_code) WHERE status IN ('free', 'held')"))
            assert (await conn.execute(validity)).all() == [("ix_slots_open_start_at", False)]
        await asyncio.to_thread(upgrade, "booking_svc", database_url)
        async with engine.connect() as conn:
            assert (await conn.execute(validity)).all() == [("ix_slots_open_ods_code_start_at", True),
                                                          ("ix_slots_open_start_at", True)]
            [definition] = (await conn.execute(text(
                "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_slots_open_start_at'"))).scalars()
            assert "(start_at) WHERE" in definition and "UNIQUE" not in definition
    finally:
        await engine.dispose()
