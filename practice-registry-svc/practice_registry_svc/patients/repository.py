"""Patient queries. Uploads are set-based (a chunked read of what exists, chunked INSERT ... ON CONFLICT), so a
practice's whole list of 10,000+ patients goes in a handful of statements rather than one per row."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import date
from typing import Any, NamedTuple

import orjson
from sqlalchemy import Row, bindparam, delete, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from practice_registry_svc.patients.models import Patient
from practice_registry_svc.practices.models import Practice
from services.db import DriverStatement, dialect_insert
from services.groupcommit import Batch

patients = Patient.__table__
CHUNK = 1000  # rows per statement: well inside both databases' limits on bound parameters
DETAIL_COLUMNS = ("family", "given", "birth_date", "gender", "postcode", "phone")
WRITTEN_COLUMNS = ("ods_code", *DETAIL_COLUMNS, "family_key", "given_key", "postcode_key", "updated_at")


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


@asynccontextmanager
async def _planned_for_values(session: AsyncSession) -> AsyncIterator[None]:
    """PostgreSQL: plan the statements inside for their actual values. A prepared statement's generic plan,
    made while the table was small, keeps scanning it row by row against a 1,000-item IN list of opaque
    parameters: seconds per upload instead of milliseconds. (Not for the upsert: that would plan every row.)"""
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        await session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
    try:
        yield
    finally:
        if postgres:
            await session.execute(text("SET LOCAL plan_cache_mode = auto"))


async def current_registrations(session: AsyncSession, nhs_numbers: Sequence[str]) -> dict[str, Row]:
    """nhs_number -> (nhs_number, ods_code, family, given, birth_date, gender, postcode, phone) of those known."""
    found: dict[str, Row] = {}
    columns = [patients.c.nhs_number, patients.c.ods_code, *(patients.c[name] for name in DETAIL_COLUMNS)]
    async with _planned_for_values(session):
        for chunk in _chunks(nhs_numbers):
            for row in (await session.execute(select(*columns).where(patients.c.nhs_number.in_(chunk)))).all():
                found[row.nhs_number] = row
    return found


async def upsert(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    if not rows:
        return
    insert = dialect_insert(session.get_bind().dialect.name)(patients)
    # One statement executed with many parameter sets: compiled once (a statement with 1,000 rows of literal
    # VALUES costs more to compile than to run) and batched by the driver.
    statement = insert.on_conflict_do_update(index_elements=[patients.c.nhs_number],
                                             set_={name: insert.excluded[name] for name in WRITTEN_COLUMNS})
    for chunk in _chunks(rows):
        await session.execute(statement, list(chunk))


async def nhs_numbers_at(session: AsyncSession, ods_code: str) -> set[str]:
    query = select(patients.c.nhs_number).where(patients.c.ods_code == ods_code)
    return set((await session.execute(query)).scalars().all())


async def remove(session: AsyncSession, ods_code: str, nhs_numbers: Sequence[str]) -> None:
    async with _planned_for_values(session):
        for chunk in _chunks(nhs_numbers):
            await session.execute(delete(patients).where(patients.c.ods_code == ods_code,
                                                         patients.c.nhs_number.in_(chunk)))


# Built once: every agent's patient lookup by NHS number runs it.
_BY_NHS_NUMBER = (select(Patient, Practice).join(Practice, Practice.ods_code == Patient.ods_code)
                  .where(Patient.nhs_number == bindparam("p_nhs")))


async def find_by_nhs_number(session: AsyncSession, nhs_number: str) -> Sequence[tuple[Patient, Practice]]:
    return [(row[0], row[1]) for row in (await session.execute(_BY_NHS_NUMBER, {"p_nhs": nhs_number})).all()]


# A group-committed batch's lookups by NHS number (services.groupcommit): plain columns, every number in one round
# trip. opening_hours is JSON, which the driver hands over as text.
_MATCH_COLUMNS = (*(patients.c[name] for name in ("nhs_number", *DETAIL_COLUMNS)),
                  *(Practice.__table__.c[name] for name in ("ods_code", "name", "pcn_code", "status", "phone",
                                                             "notes_for_agents", "opening_hours")))
_BY_NHS_NUMBER_EACH = DriverStatement(select(*_MATCH_COLUMNS).join(Practice, Practice.ods_code == Patient.ods_code)
                                      .where(Patient.nhs_number == bindparam("p_nhs")))


class PatientRow(NamedTuple):
    nhs_number: str
    family: str
    given: str
    birth_date: date
    gender: str | None
    postcode: str | None
    phone: str | None


class PracticeRow(NamedTuple):
    ods_code: str
    name: str
    pcn_code: str | None
    status: str
    phone: str | None
    notes_for_agents: str | None
    opening_hours: dict[str, Any] | None


async def find_by_nhs_number_each(batch: Batch, nhs_numbers: Sequence[str]) -> dict[str, tuple[PatientRow, PracticeRow]]:
    """`find_by_nhs_number` for each number, by number (a number is registered at one practice at most)."""
    rows = await _BY_NHS_NUMBER_EACH.fetch_each(batch.driver, batch.dialect, [{"p_nhs": n} for n in nhs_numbers])
    found = {}
    for row in rows:
        patient, practice = PatientRow(*row[:7]), row[7:]
        hours = practice[6]
        found[patient.nhs_number] = (patient, PracticeRow(*practice[:6], orjson.loads(hours) if hours else None))
    return found


async def find_by_demographics(session: AsyncSession, *, family_key: str, birth_date: date, postcode_key: str | None,
                               given_key: str | None, limit: int) -> Sequence[tuple[Patient, Practice]]:
    query = (select(Patient, Practice).join(Practice, Practice.ods_code == Patient.ods_code)
             .where(Patient.family_key == family_key, Patient.birth_date == birth_date)
             .order_by(Patient.given_key, Patient.nhs_number).limit(limit))
    if postcode_key:
        query = query.where(Patient.postcode_key == postcode_key)
    if given_key:
        query = query.where(Patient.given_key.startswith(given_key, autoescape=True))
    return [(row[0], row[1]) for row in (await session.execute(query)).all()]
