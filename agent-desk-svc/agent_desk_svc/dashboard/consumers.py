"""Projections the dashboard reads, kept from booking-svc's events (it never asks booking-svc)."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from agent_desk_svc.dashboard import repository
from agent_desk_svc.dashboard.service import london_day
from services.contracts.booking import (AppointmentBooked, AppointmentCancelled, AppointmentRescheduled,
                                        SlotAvailabilityChanged)
from services.events import Envelope
from services.logging import get_logger
from services.timeutil import as_utc

log = get_logger(__name__)

FREE_SLOT_HISTORY_DAYS = 7


async def on_appointment_booked(session: AsyncSession, envelope: Envelope, data: AppointmentBooked) -> None:
    # Counted on the day the booking was made (the event's time), not the day of the appointment.
    await repository.count_booking_change(session, london_day(envelope.occurred_at), data.ods_code, "booked")


async def on_appointment_cancelled(session: AsyncSession, envelope: Envelope, data: AppointmentCancelled) -> None:
    await repository.count_booking_change(session, london_day(envelope.occurred_at), data.ods_code, "cancelled")


async def on_appointment_rescheduled(session: AsyncSession, envelope: Envelope, data: AppointmentRescheduled) -> None:
    await repository.count_booking_change(session, london_day(envelope.occurred_at), data.ods_code, "rescheduled")


async def on_availability_changed(session: AsyncSession, envelope: Envelope, data: SlotAvailabilityChanged) -> None:
    as_of = as_utc(envelope.occurred_at)
    for day_text, free in data.free_slots_by_date.items():
        try:
            day = date.fromisoformat(day_text)
        except ValueError:
            log.warning("dashboard.bad_free_slots_date", ods_code=data.ods_code)
            continue
        await repository.set_free_slots(session, data.ods_code, day, free, as_of)
    await repository.forget_free_slots_before(session, data.ods_code,
                                              london_day(as_of) - timedelta(days=FREE_SLOT_HISTORY_DAYS))
