from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from agent_desk_svc.dashboard.models import PracticeDayBookings, PracticeDayFreeSlots
from services.db import upsert

COUNTERS = ("booked", "cancelled", "rescheduled")


async def count_booking_change(session: AsyncSession, day: date, ods_code: str, counter: str) -> None:
    if counter not in COUNTERS:
        raise ValueError(counter)
    table = PracticeDayBookings.__table__
    values = {"day": day, "ods_code": ods_code, **{c: int(c == counter) for c in COUNTERS}}
    await upsert(session, table, values, key=["day", "ods_code"],
                 update=lambda _excluded: {counter: table.c[counter] + 1})


async def set_free_slots(session: AsyncSession, ods_code: str, day: date, free_slots: int, as_of: datetime) -> None:
    """Keep the newest report: an older event arriving late does not overwrite a newer count."""
    table = PracticeDayFreeSlots.__table__
    await upsert(session, table, {"ods_code": ods_code, "day": day, "free_slots": free_slots, "as_of": as_of},
                 key=["ods_code", "day"],
                 update=lambda excluded: {"free_slots": excluded.free_slots, "as_of": excluded.as_of},
                 where=lambda excluded: table.c.as_of <= excluded.as_of)


async def forget_free_slots_before(session: AsyncSession, ods_code: str, day: date) -> None:
    await session.execute(delete(PracticeDayFreeSlots).where(PracticeDayFreeSlots.ods_code == ods_code,
                                                             PracticeDayFreeSlots.day < day))


async def bookings_on(session: AsyncSession, day: date) -> list[PracticeDayBookings]:
    query = select(PracticeDayBookings).where(PracticeDayBookings.day == day).order_by(PracticeDayBookings.ods_code)
    return list((await session.execute(query)).scalars().all())


async def free_slots_on(session: AsyncSession, day: date) -> dict[str, int]:
    query = (select(PracticeDayFreeSlots.ods_code, PracticeDayFreeSlots.free_slots)
             .where(PracticeDayFreeSlots.day == day).order_by(PracticeDayFreeSlots.ods_code))
    return {ods: int(n) for ods, n in (await session.execute(query)).all()}
