"""Taking and releasing holds. A hold is stored on its slot; it is absent once `expires_at` has passed."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from booking_svc.slots import repository as slots
from booking_svc.slots.service import (
    check_available,
    check_bookable,
    explain_refusal,
    holder_key,
    load_for_booking,
    london_date,
    london_day,
    london_iso,
    publish_availability,
)
from services.auth import Principal
from services.errors import Forbidden, NotFound


async def place(session: AsyncSession, principal: Principal, slot_id: str, *, now: datetime,
                hold_seconds: int) -> dict:
    slot, practice, rules, _clinician, _registered = await load_for_booking(session, principal, slot_id)
    holder = holder_key(principal)
    check_available(slot, holder=holder, hold_id=None, now=now)
    check_bookable(slot, practice, rules, now)
    hold_id = uuid.uuid4().hex
    expires_at = now + timedelta(seconds=hold_seconds)
    day = london_date(slot.start_at)
    free_that_day = await slots.hold(session, slot.id, ods_code=slot.ods_code, hold_id=hold_id, holder=holder,
                                     expires_at=expires_at, now=now, day=london_day(day))
    if free_that_day is None:
        raise await explain_refusal(session, slot.id, holder=holder, hold_id=None, now=now)
    await publish_availability(session, slot.ods_code, days=[day], now=now, taken=[slot.id],
                               counted={day: free_that_day})
    return {"hold_id": hold_id, "slot_id": slot.id, "expires_at": london_iso(expires_at),
            "expires_in_seconds": hold_seconds}


async def release(session: AsyncSession, principal: Principal, hold_id: str, *, now: datetime) -> None:
    released = await slots.release_hold(session, hold_id, holder=holder_key(principal), now=now)
    if released is None:
        if await slots.live_hold(session, hold_id, now) is not None:
            raise Forbidden("This hold belongs to someone else.", code="not_hold_owner")
        raise NotFound("There is no such hold, or it has expired.", code="hold_not_found")
    await publish_availability(session, released.ods_code, days=[london_date(released.start_at)], now=now,
                               freed=[released.id])
