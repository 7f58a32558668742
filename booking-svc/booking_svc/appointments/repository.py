"""Appointment queries."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, bindparam, func, null, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from booking_svc.appointments.models import ACTIVE, DISPLACED, Appointment
from booking_svc.db import chunks, dialect_name
from booking_svc.feed import repository as feed
from booking_svc.slots import repository as slots
from services.db import DriverStatement, dialect_insert
from services.groupcommit import Batch


async def get(session: AsyncSession, appointment_id: str) -> Appointment | None:
    return await session.get(Appointment, appointment_id)


# A new appointment goes in with one Core INSERT, not the ORM's unit of work; a booking reference that is
# already taken inserts nothing (and the caller draws another) instead of costing a SELECT on every booking.
_INSERT_NEW = {name: dialect_insert(name)(Appointment.__table__)
               .on_conflict_do_nothing(index_elements=["booking_reference"]).returning(Appointment.id)
               for name in ("postgresql", "sqlite")}


@functools.cache
def _claim_and_insert(own_hold: bool, counted: bool, fed: bool) -> Select:
    """PostgreSQL: claim the slot, insert the appointment (only if the claim took), count the day's free slots and
    write the feed entry (only if the appointment went in), in one round trip. Rows: none if the claim lost; else
    (the slot's id, 1 if inserted else 0, the count, the feed entry's number)."""
    claimed = slots.claim_statement(own_hold).cte("claimed")
    columns = Appointment.__table__.c
    added = (pg_insert(Appointment.__table__)
             .from_select([c.name for c in columns],
                          select(*(bindparam(f"a_{c.name}", type_=c.type) for c in columns)).select_from(claimed))
             .on_conflict_do_nothing(index_elements=["booking_reference"])
             .returning(columns.id)
             .cte("added"))
    inserted = select(func.count()).select_from(added).scalar_subquery()
    free = slots.FREE_IN_DAY_BESIDES.scalar_subquery() if counted else null()
    seq = feed.bump_and_add_after(added) if fed else null()
    return select(claimed.c.id, inserted, free, seq)


def _insert_with_entry() -> Select:
    """PostgreSQL, for a group-committed batch: the appointment (as `insert_new`) and its feed entry, written only
    if the appointment went in, in one round trip. One row: (1 if inserted else 0, the entry's number or NULL)."""
    columns = Appointment.__table__.c
    added = (pg_insert(Appointment.__table__)
             .values({c.name: bindparam(f"a_{c.name}", type_=c.type) for c in columns})
             .on_conflict_do_nothing(index_elements=["booking_reference"])
             .returning(columns.id)
             .cte("added"))
    return select(select(func.count()).select_from(added).scalar_subquery(), feed.upsert_and_add_after(added))


_INSERT_WITH_ENTRY_EACH = DriverStatement(_insert_with_entry())


async def insert_with_entry_each(batch: Batch, rows: list[tuple[dict[str, Any], dict[str, Any]]]) -> list[bool]:
    """For each (appointment's columns, its feed entry as feed.service.entry makes it) of a group-committed batch
    (services.groupcommit), in the order given (the caller's practice order, so the feed counters' locks are taken
    in one order): whether the appointment and its entry went in (not if its booking reference was taken)."""
    written = await _INSERT_WITH_ENTRY_EACH.fetch_each(batch.driver, batch.dialect, [
        {**{f"a_{name}": value for name, value in columns.items()}, **feed.entry_params(**entry)}
        for columns, entry in rows])
    return [bool(row[0]) for row in written]


async def insert_new(session: AsyncSession, values: dict[str, Any]) -> bool:
    """False when the booking reference is taken. Any other conflict (the slot's one active appointment) raises
    IntegrityError."""
    return (await session.execute(_INSERT_NEW[dialect_name(session)], values)).first() is not None


async def book(session: AsyncSession, values: dict[str, Any], *, holder: str, hold_id: str | None, now: datetime,
               day: tuple[datetime, datetime] | None,
               feed_entry: dict[str, Any] | None) -> tuple[bool, int | None, bool] | None:
    """Claim the slot `values` names (see slots.claim_statement) and insert the appointment `values` describes.
    None if the claim lost; else whether the appointment went in (False: its booking reference is taken, the slot
    stays claimed), with `day` how many slots can still be held or booked in that [lo, hi), and whether
    `feed_entry` (see feed.repository.append) was written: only if the appointment went in, and not always then."""
    claim = slots.claim_params(values["slot_id"], holder=holder, hold_id=hold_id, now=now)
    if dialect_name(session) == "postgresql":
        params = {**claim, **{f"a_{name}": value for name, value in values.items()},
                  **(slots.free_in_day_params(values["ods_code"], day, now) if day else {}),
                  **(feed.entry_params(**feed_entry) if feed_entry else {})}
        statement = _claim_and_insert(bool(hold_id), day is not None, feed_entry is not None)
        row = (await session.execute(statement, params)).first()
        return None if row is None else (bool(row[1]), None if day is None else int(row[2]), row[3] is not None)
    if not await slots.book(session, values["slot_id"], holder=holder, hold_id=hold_id, now=now):
        return None
    inserted = await insert_new(session, values)
    free = (await slots.available_counts(session, values["ods_code"], [day], now))[0] if day else None
    if inserted and feed_entry:
        await feed.append(session, **feed_entry)
    return inserted, free, bool(inserted and feed_entry)


async def search(session: AsyncSession, *, nhs_number: str | None, practice: str | None, visible_to: str | None,
                 start: datetime | None, end: datetime | None, status: str | None,
                 after: tuple[datetime, str] | None, limit: int) -> list[Appointment]:
    query = select(Appointment)
    if nhs_number:
        query = query.where(Appointment.nhs_number == nhs_number)
    if practice:
        query = query.where(Appointment.ods_code == practice)
    if visible_to:
        query = query.where(or_(Appointment.ods_code == visible_to, Appointment.registered_ods_code == visible_to))
    if start:
        query = query.where(Appointment.slot_start >= start)
    if end:
        query = query.where(Appointment.slot_start < end)
    if status:
        query = query.where(Appointment.status == status)
    if after:
        query = query.where(or_(Appointment.slot_start > after[0],
                                and_(Appointment.slot_start == after[0], Appointment.id > after[1])))
    query = query.order_by(Appointment.slot_start, Appointment.id).limit(limit)
    return list((await session.execute(query)).scalars())


async def displace_on_slots(session: AsyncSession, slot_ids: Iterable[str], now: datetime) -> list:
    """Mark the active appointments on these (removed) slots displaced; returns exactly the rows changed."""
    table = Appointment.__table__
    changed = []
    for chunk in chunks(sorted(slot_ids)):
        result = await session.execute(
            update(table).where(table.c.slot_id.in_(chunk), table.c.status.in_(ACTIVE))
            .values(status=DISPLACED, version=table.c.version + 1, updated_at=now)
            .returning(*table.c))
        changed.extend(result.all())
    return changed
