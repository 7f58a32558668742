"""Projections the dashboard reads, kept from booking-svc's events (it never asks booking-svc)."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from agent_desk_svc.dashboard import repository
from agent_desk_svc.dashboard.service import london_day
from services.contracts.booking import AppointmentBooked, AppointmentCancelled, AppointmentRescheduled
from services.events import Envelope
from services.inbox import Batched
from services.logging import get_logger
from services.timeutil import as_utc

log = get_logger(__name__)

FREE_SLOT_HISTORY_DAYS = 7


COUNTER = {AppointmentBooked: "booked", AppointmentCancelled: "cancelled", AppointmentRescheduled: "rescheduled"}


async def _count_booking_changes(session: AsyncSession, items: list[tuple[Envelope, Any]]) -> None:
    # Counted on the day the change was made (the event's time), not the day of the appointment.
    changes: Counter[tuple[date, str, str]] = Counter()
    for envelope, data in items:
        changes[(london_day(envelope.occurred_at), data.ods_code, COUNTER[type(data)])] += 1
    await repository.count_booking_changes(session, changes)


async def _record_free_slots(session: AsyncSession, items: list[tuple[Envelope, Any]]) -> None:
    """From SlotAvailabilityChanged and from the appointment changes that carry their days' counts."""
    newest: dict[tuple[str, date], tuple[int, datetime]] = {}
    keep_from: dict[str, date] = {}
    for envelope, data in items:
        as_of = as_utc(envelope.occurred_at)
        for day_text, free in data.free_slots_by_date.items():
            try:
                day = date.fromisoformat(day_text)
            except ValueError:
                log.warning("dashboard.bad_free_slots_date", ods_code=data.ods_code)
                continue
            known = newest.get((data.ods_code, day))
            if known is None or known[1] <= as_of:
                newest[(data.ods_code, day)] = (free, as_of)
        cutoff = london_day(as_of) - timedelta(days=FREE_SLOT_HISTORY_DAYS)
        keep_from[data.ods_code] = max(keep_from.get(data.ods_code, cutoff), cutoff)
    await repository.set_free_slots(session, newest)
    await repository.forget_free_slots_before(session, keep_from)


# A fetched batch of these is applied in a few statements, whatever its size.
on_booking_change = Batched(_count_booking_changes)
on_availability_changed = Batched(_record_free_slots)
