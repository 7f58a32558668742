"""The dashboard's figures, with bookings and free slots counted from real booking events on NATS."""

from __future__ import annotations

from datetime import timedelta

from services.contracts.booking import AppointmentBooked, AppointmentCancelled, SlotAvailabilityChanged
from services.timeutil import LONDON, utcnow
from tests.agent_desk_svc.conftest import Desk, staff
from tests.support.apps import practice, wait_until

ALICE = staff("alice")


def appointment(contract, appointment_id: str, ods_code: str, **extra):  # noqa: ANN001, ANN201
    start = utcnow() + timedelta(days=3)
    return contract(appointment_id=appointment_id, ods_code=ods_code, slot_id=f"slot-{appointment_id}",
                    nhs_number="9434765919", slot_start=start, slot_end=start + timedelta(minutes=10),
                    clinician_id="c1", slot_type="routine", channel="in_person", version=1, actor="alice",
                    actor_role="agent", **extra)


async def test_dashboard_counts_agents_calls_callbacks_and_booking_events(desk: Desk) -> None:
    for name in ("alice", "bob", "carol"):
        await desk.create_agent(name)
    await desk.client.put("/api/v1/agents/alice/state", headers=ALICE, json={"state": "available"})
    await desk.client.put("/api/v1/agents/bob/state", headers=staff("bob"), json={"state": "break"})
    await desk.client.patch("/api/v1/agents/carol", headers=staff("root", "admin"), json={"active": False})
    call = (await desk.client.post("/api/v1/calls", headers=ALICE, json={})).json()
    await desk.client.patch(f"/api/v1/calls/{call['id']}", headers=ALICE, json={"disposition": "advice_given"})
    await desk.client.post("/api/v1/callbacks", headers=practice("A81001"), json={
        "ods_code": "A81001", "nhs_number": "9434765919", "reason": "overdue",
        "due_by": (utcnow() - timedelta(minutes=5)).isoformat()})
    await desk.client.post("/api/v1/callbacks", headers=ALICE, json={
        "ods_code": "B82002", "nhs_number": "4010232137", "reason": "later"})

    now = utcnow()
    today = now.astimezone(LONDON).date()
    booked = AppointmentBooked
    first = await desk.publish(appointment(booked, "a1", "A81001", status="booked", booking_reference="R1"),
                               subject_key="A81001")
    for appointment_id, ods_code in (("a2", "A81001"), ("b1", "B82002")):
        await desk.publish(appointment(booked, appointment_id, ods_code, status="booked", booking_reference="R"),
                           subject_key=ods_code)
    # The same event again under another message id (JetStream keeps both): the inbox applies it once.
    await desk.republish(first, msg_id="redelivered")
    # A booking made yesterday (London) is not today's.
    await desk.publish(appointment(booked, "old", "A81001", status="booked", booking_reference="R0"),
                       subject_key="A81001", occurred_at=now - timedelta(days=1, hours=1))
    await desk.publish(appointment(AppointmentCancelled, "a2", "A81001", status="cancelled", reason="better slot"),
                       subject_key="A81001")
    tomorrow = (today + timedelta(days=1)).isoformat()
    await desk.publish(SlotAvailabilityChanged(ods_code="A81001", free_slots_by_date={today.isoformat(): 12,
                                                                                      tomorrow: 30}),
                       subject_key="A81001", occurred_at=now)
    # An older report arriving late does not overwrite the newer count.
    await desk.publish(SlotAvailabilityChanged(ods_code="A81001", free_slots_by_date={today.isoformat(): 99}),
                       subject_key="A81001", occurred_at=now - timedelta(minutes=1))
    await desk.publish(SlotAvailabilityChanged(ods_code="B82002", free_slots_by_date={today.isoformat(): 4},
                                               taken_slot_ids=["s1"]), subject_key="B82002", occurred_at=now)
    # A booking carries its day's new free count itself.
    await desk.publish(appointment(booked, "c1", "C83003", status="booked", booking_reference="R3",
                                   free_slots_by_date={today.isoformat(): 5}), subject_key="C83003")

    await wait_until(lambda: desk.drained("BOOKING"))
    response = await desk.client.get("/api/v1/dashboard", headers=staff("sue", "supervisor"))
    assert response.status_code == 200
    figures = response.json()
    assert figures["date"] == today.isoformat()
    assert figures["bookings_today_by_practice"] == {"A81001": 2, "B82002": 1, "C83003": 1}
    assert figures["cancellations_today_by_practice"] == {"A81001": 1}
    assert figures["free_slots_today_by_practice"] == {"A81001": 12, "B82002": 4, "C83003": 5}
    assert figures["agents_by_state"] == {"available": 0, "on_call": 0, "wrap_up": 1, "break": 1, "offline": 1}
    assert figures["calls_today"] == 1 and figures["avg_handle_seconds"] is not None
    assert figures["avg_handle_seconds"] >= 0
    assert figures["open_callbacks"] == 2 and figures["overdue_callbacks"] == 1
    assert (await desk.client.get("/api/v1/dashboard", headers=practice("A81001"))).status_code == 403
    assert (await desk.client.get("/api/v1/dashboard")).status_code == 401
