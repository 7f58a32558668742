"""Appointment queries."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from booking_svc.appointments.models import ACTIVE, DISPLACED, Appointment
from booking_svc.db import chunks, dialect_name
from services.db import dialect_insert


async def get(session: AsyncSession, appointment_id: str) -> Appointment | None:
    return await session.get(Appointment, appointment_id)


# A new appointment goes in with one Core INSERT, not the ORM's unit of work; a booking reference that is
# already taken inserts nothing (and the caller draws another) instead of costing a SELECT on every booking.
_INSERT_NEW = {name: dialect_insert(name)(Appointment.__table__)
               .on_conflict_do_nothing(index_elements=["booking_reference"]).returning(Appointment.id)
               for name in ("postgresql", "sqlite")}


async def insert_new(session: AsyncSession, values: dict[str, Any]) -> bool:
    """False when the booking reference is taken. Any other conflict (the slot's one active appointment) raises
    IntegrityError."""
    return (await session.execute(_INSERT_NEW[dialect_name(session)], values)).first() is not None


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
