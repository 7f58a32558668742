"""The dashboard and audit projections take a whole fetched batch at once (services.inbox.Batched): several
events for the same practice and day, late reports and repeated events inside one batch, on SQLite and
PostgreSQL. (test_dashboard and test_audit cover the same projections fed through NATS.)"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from agent_desk_svc.audit.consumers import on_audit_recorded
from agent_desk_svc.dashboard.consumers import on_availability_changed, on_booking_change
from services.contracts.audit import BookingAuditRecorded
from services.contracts.booking import (AppointmentBooked, AppointmentCancelled, AppointmentRescheduled,
                                        SlotAvailabilityChanged)
from services.events import Envelope, EventData
from services.timeutil import LONDON, utcnow
from tests.agent_desk_svc.conftest import Desk, staff
from tests.agent_desk_svc.test_dashboard import appointment

SUE = staff("sue", "supervisor")


def item(event: EventData, subject_key: str, occurred_at: datetime | None = None) -> tuple[Envelope, Any]:
    envelope = Envelope.wrap(event, producer="booking-svc", subject_key=subject_key, correlation_id=None)
    if occurred_at is not None:
        envelope.occurred_at = occurred_at
    return envelope, event


async def apply(desk: Desk, handler: Any, items: list[tuple[Envelope, Any]]) -> None:
    async with desk.app.state.db.transaction() as session:
        await handler.apply(session, items)


async def dashboard(desk: Desk) -> dict[str, Any]:
    response = await desk.client.get("/api/v1/dashboard", headers=SUE)
    assert response.status_code == 200, response.text
    return response.json()


async def test_booking_changes_in_one_batch_add_up_per_practice_and_day(desk: Desk) -> None:
    yesterday = utcnow() - timedelta(days=1, hours=1)
    await apply(desk, on_booking_change, [
        item(appointment(AppointmentBooked, "a1", "A81001", status="booked", booking_reference="R1"), "A81001"),
        item(appointment(AppointmentBooked, "a2", "A81001", status="booked", booking_reference="R2"), "A81001"),
        item(appointment(AppointmentCancelled, "a2", "A81001", status="cancelled"), "A81001"),
        item(appointment(AppointmentRescheduled, "a3", "A81001", status="booked", previous_appointment_id="a1",
                         previous_slot_id="slot-a1", previous_slot_start=utcnow() + timedelta(days=3)), "A81001"),
        item(appointment(AppointmentBooked, "b1", "B82002", status="booked", booking_reference="R3"), "B82002"),
        item(appointment(AppointmentBooked, "old", "B82002", status="booked", booking_reference="R4"), "B82002",
             occurred_at=yesterday),
    ])
    # A second batch adds to the same rows.
    await apply(desk, on_booking_change, [
        item(appointment(AppointmentBooked, "a4", "A81001", status="booked", booking_reference="R5"), "A81001")])
    figures = await dashboard(desk)
    assert figures["bookings_today_by_practice"] == {"A81001": 3, "B82002": 1}
    assert figures["cancellations_today_by_practice"] == {"A81001": 1}


async def test_the_newest_free_slot_count_wins_within_and_across_batches(desk: Desk) -> None:
    now = utcnow()
    today = now.astimezone(LONDON).date().isoformat()
    await apply(desk, on_availability_changed, [
        item(SlotAvailabilityChanged(ods_code="A81001", free_slots_by_date={today: 12}), "A81001", now),
        item(SlotAvailabilityChanged(ods_code="A81001", free_slots_by_date={today: 99}), "A81001",
             now - timedelta(minutes=1)),  # older, arrived later in the same batch
        item(SlotAvailabilityChanged(ods_code="B82002", free_slots_by_date={today: 7, "not a date": 3}), "B82002",
             now),
    ])
    await apply(desk, on_availability_changed, [  # an older report in a later batch
        item(SlotAvailabilityChanged(ods_code="B82002", free_slots_by_date={today: 50}), "B82002",
             now - timedelta(seconds=5))])
    assert (await dashboard(desk))["free_slots_today_by_practice"] == {"A81001": 12, "B82002": 7}


async def test_an_audit_record_repeated_in_a_batch_or_already_kept_is_stored_once(desk: Desk) -> None:
    at = datetime(2024, 3, 4, 9, 0, tzinfo=timezone.utc)
    first = item(BookingAuditRecorded(actor="bob", role="agent", on_behalf_of="A81001", action="appointment.book",
                                      target_kind="appointment", target_id="appt-1", nhs_number="943 476 5919",
                                      at=at), "A81001")
    second = item(BookingAuditRecorded(actor="bob", role="agent", on_behalf_of="A81001", action="appointment.cancel",
                                       target_kind="appointment", target_id="appt-1", at=at + timedelta(minutes=1)),
                  "A81001")
    await apply(desk, on_audit_recorded, [first])
    await apply(desk, on_audit_recorded, [first, second, second])
    response = await desk.client.get("/api/v1/audit", headers=SUE, params={
        "from": at.isoformat(), "to": (at + timedelta(hours=1)).isoformat()})
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert [i["action"] for i in items] == ["appointment.cancel", "appointment.book"]
    assert items[1]["nhs_number"] == "9434765919" and items[1]["service"] == "booking-svc"
