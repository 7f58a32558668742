from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from agent_desk_svc.dashboard.models import PracticeDayBookings, PracticeDayFreeSlots
from services.db import upsert

COUNTERS = ("booked", "cancelled", "rescheduled")


async def count_booking_changes(session: AsyncSession, changes: Mapping[tuple[date, str, str], int]) -> None:
    """Add (day, practice, counter) -> n to the counters: one INSERT ... ON CONFLICT for all of them."""
    rows: dict[tuple[date, str], dict[str, object]] = {}
    for (day, ods_code, counter), n in changes.items():
        if counter not in COUNTERS:
            raise ValueError(counter)
        row = rows.setdefault((day, ods_code), {"day": day, "ods_code": ods_code, **{c: 0 for c in COUNTERS}})
        row[counter] = int(row[counter]) + n  # type: ignore[call-overload]
    if not rows:
        return
    table = PracticeDayBookings.__table__
    await upsert(session, table, list(rows.values()), key=["day", "ods_code"],
                 update=lambda excluded: {c: table.c[c] + getattr(excluded, c) for c in COUNTERS})


async def set_free_slots(session: AsyncSession, counts: Mapping[tuple[str, date], tuple[int, datetime]]) -> None:
    """(practice, day) -> (free slots, as of). Keeps the newest report: an older event arriving late does not
    overwrite a newer count."""
    if not counts:
        return
    table = PracticeDayFreeSlots.__table__
    rows = [{"ods_code": ods_code, "day": day, "free_slots": free, "as_of": as_of}
            for (ods_code, day), (free, as_of) in counts.items()]
    await upsert(session, table, rows, key=["ods_code", "day"],
                 update=lambda excluded: {"free_slots": excluded.free_slots, "as_of": excluded.as_of},
                 where=lambda excluded: table.c.as_of <= excluded.as_of)


async def forget_free_slots_before(session: AsyncSession, keep_from: Mapping[str, date]) -> None:
    """Drop each practice's counts of days before its date."""
    practices_by_day: dict[date, list[str]] = {}
    for ods_code, day in keep_from.items():
        practices_by_day.setdefault(day, []).append(ods_code)
    for day, ods_codes in practices_by_day.items():
        await session.execute(delete(PracticeDayFreeSlots).where(PracticeDayFreeSlots.ods_code.in_(sorted(ods_codes)),
                                                                 PracticeDayFreeSlots.day < day))


async def bookings_on(session: AsyncSession, day: date) -> list[PracticeDayBookings]:
    query = select(PracticeDayBookings).where(PracticeDayBookings.day == day).order_by(PracticeDayBookings.ods_code)
    return list((await session.execute(query)).scalars().all())


async def free_slots_on(session: AsyncSession, day: date) -> dict[str, int]:
    query = (select(PracticeDayFreeSlots.ods_code, PracticeDayFreeSlots.free_slots)
             .where(PracticeDayFreeSlots.day == day).order_by(PracticeDayFreeSlots.ods_code))
    return {ods: int(n) for ods, n in (await session.execute(query)).all()}
