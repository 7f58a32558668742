"""Events published by booking-svc."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from services.events import EventData

AppointmentStatus = Literal["booked", "cancelled", "displaced", "arrived", "completed", "did_not_attend"]


class _AppointmentEvent(EventData):
    """A change to an appointment. It is also the change's audit record (agent-desk-svc keeps it in the trail:
    `actor`, `actor_role`, on behalf of `ods_code`, at the envelope's `occurred_at`), and it carries the free-slot
    counts of the London days it touched at `ods_code`, as SlotAvailabilityChanged does (empty when it moved
    none), so a booking is one event, not three."""

    appointment_id: str
    ods_code: str
    slot_id: str
    nhs_number: str
    slot_start: datetime
    slot_end: datetime
    clinician_id: str
    slot_type: str
    channel: str
    status: AppointmentStatus
    version: int
    actor: str
    actor_role: str
    free_slots_by_date: dict[str, int] = {}


class AppointmentBooked(_AppointmentEvent):
    event_type = "booking.appointment.booked"
    booking_reference: str


class AppointmentCancelled(_AppointmentEvent):
    event_type = "booking.appointment.cancelled"
    reason: str | None = None


class AppointmentRescheduled(_AppointmentEvent):
    """The appointment moved: `slot_*` fields describe the new slot. `free_slots_by_date` counts `ods_code`'s days;
    a move from another practice (`previous_ods_code`) also sends SlotAvailabilityChanged for that one."""

    event_type = "booking.appointment.rescheduled"
    previous_appointment_id: str
    previous_slot_id: str
    previous_slot_start: datetime
    previous_ods_code: str | None = None


class AppointmentDisplaced(_AppointmentEvent):
    """A rota change removed the booked slot; someone must ring the patient."""

    event_type = "booking.appointment.displaced"


class AppointmentStatusChanged(_AppointmentEvent):
    event_type = "booking.appointment.status_changed"


class SlotsPublished(EventData):
    event_type = "booking.slots.published"
    ods_code: str
    from_date: date
    to_date: date
    created: int
    removed: int
    unchanged: int
    displaced: int


class SlotAvailabilityChanged(EventData):
    """Free-slot counts for the days a change touched, so live views update without asking booking-svc."""

    event_type = "booking.availability.changed"
    ods_code: str
    free_slots_by_date: dict[str, int]
    taken_slot_ids: list[str] = []
    freed_slot_ids: list[str] = []
