"""Taking and releasing holds. A hold is stored on its slot; it is absent once `expires_at` has passed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from booking_svc.slots import repository as slots
from booking_svc.slots.repository import SlotRow
from booking_svc.slots.service import (
    check_available,
    check_bookable,
    day_counts,
    explain_refusal,
    found_for_booking,
    holder_key,
    load_for_booking,
    london_date,
    london_day,
    london_iso,
    publish_availability,
)
from services.auth import Principal
from services.contracts.booking import SlotAvailabilityChanged
from services.errors import DomainError, Forbidden, NotFound
from services.groupcommit import RUN_ALONE, Batch
from services.ids import new_id


async def place(session: AsyncSession, principal: Principal, slot_id: str, *, now: datetime,
                hold_seconds: int) -> dict:
    slot, practice, rules, _clinician, _registered = await load_for_booking(session, principal, slot_id)
    holder = holder_key(principal)
    check_available(slot, holder=holder, hold_id=None, now=now)
    check_bookable(slot, practice, rules, now)
    hold_id = new_id()
    expires_at = now + timedelta(seconds=hold_seconds)
    day = london_date(slot.start_at)
    free_that_day = await slots.hold(session, slot.id, ods_code=slot.ods_code, hold_id=hold_id, holder=holder,
                                     expires_at=expires_at, now=now, day=london_day(day))
    if free_that_day is None:
        raise await explain_refusal(session, slot.id, holder=holder, hold_id=None, now=now)
    await publish_availability(session, slot.ods_code, days=[day], now=now, taken=[slot.id],
                               counted={day: free_that_day})
    return _view(hold_id, slot.id, expires_at, hold_seconds)


@dataclass(frozen=True)
class HoldRequest:
    """One request for a hold, as the group commit carries it (booking_svc.main, services.groupcommit)."""

    principal: Principal
    slot_id: str
    now: datetime
    hold_seconds: int
    correlation_id: str | None


def hold_key(request: HoldRequest) -> str:
    """A batch holds a slot for one request; another request for it runs after (services.groupcommit)."""
    return request.slot_id


async def place_one(session: AsyncSession, request: HoldRequest) -> dict:
    """A hold on its own: `place` in a transaction of its own (SQLite, or what `place_batch` leaves)."""
    return await place(session, request.principal, request.slot_id, now=request.now,
                       hold_seconds=request.hold_seconds)


async def place_batch(batch: Batch, requests: Sequence[HoldRequest]) -> list[Any]:
    """Place many requests' holds in one transaction (PostgreSQL; services.groupcommit commits it), with the rules
    and statements of `place`, each statement sent once for the whole batch (one request per slot: see `hold_key`).
    A hold that lost a race goes the one-request path (RUN_ALONE), which reads why."""
    outcomes: list[Any] = [RUN_ALONE] * len(requests)
    found = await slots.slots_for_booking_each(batch, [(r.slot_id, "") for r in requests])
    ready: list[tuple[int, HoldRequest, SlotRow, dict[str, Any]]] = []
    for i, request in enumerate(requests):
        holder = holder_key(request.principal)
        try:
            slot, practice, rules, _clinician, _registered = found_for_booking(request.principal,
                                                                               found.get(request.slot_id))
            check_available(slot, holder=holder, hold_id=None, now=request.now)
            check_bookable(slot, practice, rules, request.now)
        except DomainError as refusal:
            outcomes[i] = refusal
            continue
        ready.append((i, request, slot, {
            **slots.hold_params(slot.id, hold_id=new_id(), holder=holder,
                                expires_at=request.now + timedelta(seconds=request.hold_seconds), now=request.now),
            **slots.free_in_day_params(slot.ods_code, london_day(london_date(slot.start_at)), request.now)}))
    held = await slots.hold_each(batch, [params for _i, _r, _s, params in ready])
    ready = [entry for entry in ready if entry[2].id in held]
    counts = day_counts(held, {slot.id: (slot.ods_code, slot.start_at) for _i, _r, slot, _p in ready})
    for i, request, slot, params in ready:
        day = london_date(slot.start_at)
        batch.record_event(SlotAvailabilityChanged(ods_code=slot.ods_code, taken_slot_ids=[slot.id],
                                                   free_slots_by_date={day.isoformat(): counts[(slot.ods_code, day)]}),
                           subject_key=slot.ods_code, correlation_id=request.correlation_id)
        outcomes[i] = _view(params["p_new_hold_id"], slot.id, params["p_expires_at"], request.hold_seconds)
    return outcomes


def _view(hold_id: str, slot_id: str, expires_at: datetime, hold_seconds: int) -> dict:
    return {"hold_id": hold_id, "slot_id": slot_id, "expires_at": london_iso(expires_at),
            "expires_in_seconds": hold_seconds}


async def release(session: AsyncSession, principal: Principal, hold_id: str, *, now: datetime) -> None:
    released = await slots.release_hold(session, hold_id, holder=holder_key(principal), now=now)
    if released is None:
        if await slots.live_hold(session, hold_id, now) is not None:
            raise Forbidden("This hold belongs to someone else.", code="not_hold_owner")
        raise NotFound("There is no such hold, or it has expired.", code="hold_not_found")
    await publish_availability(session, released.ods_code, days=[london_date(released.start_at)], now=now,
                               freed=[released.id])
