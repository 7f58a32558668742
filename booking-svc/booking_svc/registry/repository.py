"""Queries on the local copy of registry data."""

from __future__ import annotations

import functools
import time as time_module
from collections.abc import Callable, Iterable
from datetime import time
from typing import NamedTuple

from sqlalchemy import String, any_, bindparam, delete, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from booking_svc.db import chunks, dialect_name, insert_ignoring_duplicates
from booking_svc.registry.models import ACTIVE, Clinician, Practice, Registration, RegistryVersion, SlotType
from services.db import DriverStatement, driver_rows, select_rows
from services.freshcopy import FreshCopy


async def get_practice(session: AsyncSession, ods_code: str, *, for_update: bool = False) -> Practice | None:
    return await session.get(Practice, ods_code, with_for_update=for_update or None)


class PracticeRow(NamedTuple):
    ods_code: str
    pcn: str | None
    status: str

    @property
    def is_active(self) -> bool:
        return self.status == ACTIVE


class SlotTypeRow(NamedTuple):
    """A slot type's booking rules as a search reads them: a plain row, not a tracked object."""
    ods_code: str
    code: str
    channel: str
    bookable_by_centre: bool
    max_days_ahead: int
    min_notice_minutes: int
    release_days_before: int | None
    release_at_time: time | None
    shared_with_pcn: bool


_SLOT_TYPE_COLUMNS = [getattr(SlotType, name) for name in SlotTypeRow._fields]


@functools.lru_cache(maxsize=4)
def _practices_and_slot_types_statement(dialect: str) -> DriverStatement:
    # PostgreSQL: one array parameter, so one statement text (and prepared statement) whatever the number of codes.
    codes = (Practice.ods_code == any_(bindparam("p_codes", type_=postgresql.ARRAY(String))) if dialect == "postgresql"
             else Practice.ods_code.in_(bindparam("p_codes", expanding=True)))
    return DriverStatement(select(Practice.ods_code, Practice.pcn, Practice.status, *_SLOT_TYPE_COLUMNS)
                           .outerjoin(SlotType, SlotType.ods_code == Practice.ods_code).where(codes))


async def practices_and_slot_types(
        session: AsyncSession, ods_codes: Iterable[str],
) -> tuple[dict[str, PracticeRow], dict[tuple[str, str], SlotTypeRow]]:
    """The practices and their slot types, in one query (a search needs both), as plain rows: loading a search's
    20 practices and 100-odd slot types as ORM objects cost more CPU than the search query itself."""
    codes = sorted(set(ods_codes))
    if not codes:
        return {}, {}
    rows = await driver_rows(session, _practices_and_slot_types_statement(dialect_name(session)), {"p_codes": codes})
    practices: dict[str, PracticeRow] = {}
    types: dict[tuple[str, str], SlotTypeRow] = {}
    for row in rows:
        practices[row[0]] = PracticeRow(*row[:3])
        if row[3] is not None:
            rules = SlotTypeRow(*row[3:])
            types[(rules.ods_code, rules.code)] = rules
    return practices, types


class PracticeRules(FreshCopy[str, tuple[PracticeRow | None, list[SlotTypeRow]]]):
    """The practices and slot types searches read, kept in memory for a short while: a search named its practices'
    rules in a query of their own before its slot query, and that query was a tenth of booking-svc's CPU in a
    wide search. They change a few times a year; the copy is emptied as soon as this process applies a registry
    event (`clear`, after its commit), and another replica's copy is at most `ttl_seconds` old, as late as the
    events themselves may be. Holds and bookings never read it: they check the rules in their own transaction.
    It holds at most one entry per practice that exists."""

    def __init__(self, ttl_seconds: float, clock: Callable[[], float] = time_module.monotonic) -> None:
        super().__init__(ttl_seconds, clock, max_entries=None)

    async def practices_and_slot_types(
            self, session: AsyncSession, ods_codes: Iterable[str],
    ) -> tuple[dict[str, PracticeRow], dict[tuple[str, str], SlotTypeRow]]:
        """As `practices_and_slot_types`, from memory where the copy is fresh."""

        async def load(missing: list[str]) -> dict[str, tuple[PracticeRow | None, list[SlotTypeRow]]]:
            practices, types = await practices_and_slot_types(session, missing)
            by_practice: dict[str, list[SlotTypeRow]] = {c: [] for c in missing}
            for rules in types.values():
                by_practice[rules.ods_code].append(rules)
            return {c: (practices.get(c), by_practice[c]) for c in missing}

        # Only practices that exist are kept: codes a client made up must not grow the copy without bound.
        rows = await self.get(sorted(set(ods_codes)), load, keep=lambda row: row[0] is not None)
        found: dict[str, PracticeRow] = {}
        slot_types: dict[tuple[str, str], SlotTypeRow] = {}
        for code in sorted(rows):
            practice, rules = rows[code]
            if practice is not None:
                found[code] = practice
            for r in rules:
                slot_types[(code, r.code)] = r
        return found, slot_types


async def pcn_members(session: AsyncSession, pcns: Iterable[str]) -> list[Practice]:
    names = sorted({p for p in pcns if p})
    if not names:
        return []
    return list((await session.execute(select(Practice).where(Practice.pcn.in_(names)))).scalars())


async def clinicians_of(session: AsyncSession, ods_code: str) -> dict[str, Clinician]:
    rows = (await session.execute(select(Clinician).where(Clinician.ods_code == ods_code))).scalars()
    return {c.clinician_id: c for c in rows}


async def clinicians_by_key(session: AsyncSession, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Clinician]:
    wanted = set(keys)
    if not wanted:
        return {}
    rows = (await session.execute(select(Clinician).where(Clinician.ods_code.in_({k[0] for k in wanted})))).scalars()
    return {(c.ods_code, c.clinician_id): c for c in rows if (c.ods_code, c.clinician_id) in wanted}


async def slot_types_of(session: AsyncSession, ods_codes: Iterable[str]) -> dict[tuple[str, str], SlotTypeRow]:
    codes = sorted(set(ods_codes))
    if not codes:
        return {}
    rows = await select_rows(session, select(*_SLOT_TYPE_COLUMNS).where(SlotType.ods_code.in_(codes)))
    return {(row[0], row[1]): SlotTypeRow(*row) for row in rows}


_REGISTERED_AT = select(Registration.ods_code).where(Registration.nhs_number == bindparam("p_nhs"))


async def registered_practices(session: AsyncSession, nhs_number: str) -> set[str]:
    return set((await session.execute(_REGISTERED_AT, {"p_nhs": nhs_number})).scalars())


async def applied_version(session: AsyncSession, ods_code: str, aggregate: str) -> int | None:
    row = await session.get(RegistryVersion, (ods_code, aggregate), with_for_update=True)
    return row.version if row else None


async def remember_version(session: AsyncSession, ods_code: str, aggregate: str, version: int) -> None:
    row = await session.get(RegistryVersion, (ods_code, aggregate))
    if row is None:
        session.add(RegistryVersion(ods_code=ods_code, aggregate=aggregate, version=version))
    else:
        row.version = version


async def replace_clinicians(session: AsyncSession, ods_code: str, rows: list[dict]) -> None:
    await session.execute(delete(Clinician).where(Clinician.ods_code == ods_code))
    if rows:
        await session.execute(Clinician.__table__.insert(), rows)


async def replace_slot_types(session: AsyncSession, ods_code: str, rows: list[dict]) -> None:
    await session.execute(delete(SlotType).where(SlotType.ods_code == ods_code))
    if rows:
        await session.execute(SlotType.__table__.insert(), rows)


async def add_registrations(session: AsyncSession, ods_code: str, nhs_numbers: list[str]) -> None:
    for chunk in chunks(nhs_numbers, 2000):
        await session.execute(insert_ignoring_duplicates(session, Registration.__table__),
                              [{"nhs_number": n, "ods_code": ods_code} for n in chunk])


async def remove_registrations(session: AsyncSession, ods_code: str, nhs_numbers: list[str]) -> None:
    for chunk in chunks(nhs_numbers):
        await session.execute(delete(Registration).where(Registration.ods_code == ods_code,
                                                         Registration.nhs_number.in_(chunk)))
