"""The audit trail: audit events from every service, searchable by supervisors and admins."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import delete, select

from agent_desk_svc.audit.models import AuditRecord
from services.contracts.audit import BookingAuditRecorded, RegistryAuditRecorded
from services.contracts.booking import (AppointmentBooked, AppointmentCancelled, AppointmentDisplaced,
                                        AppointmentRescheduled, AppointmentStatusChanged)
from services.inbox import inbox_table
from tests.agent_desk_svc.conftest import Desk, staff
from tests.support.apps import practice, wait_until

SUE, ADAM = staff("sue", "supervisor"), staff("adam", "admin")
T1 = datetime(2024, 3, 4, 9, 0, tzinfo=timezone.utc)
NHS = "9434765919"


async def test_audit_events_from_every_service_are_searchable(desk: Desk) -> None:
    await desk.publish(RegistryAuditRecorded(
        actor="alice", role="agent", action="patient.lookup", target_kind="patient", nhs_number="943 476 5919",
        query_kind="nhs_number", result_count=1, at=T1), subject_key="alice")
    await desk.publish(BookingAuditRecorded(
        actor="bob", role="agent", on_behalf_of="A81001", action="appointment.book", target_kind="appointment",
        target_id="appt-1", nhs_number=NHS, at=T1 + timedelta(minutes=5)), subject_key="A81001")
    lookup = await desk.publish(RegistryAuditRecorded(
        actor="bob", role="agent", action="patient.search", target_kind="patient", query_kind="demographics",
        result_count=0, at=T1 + timedelta(minutes=10)), subject_key="bob")
    await desk.republish(lookup, msg_id="again")  # applied once

    async def everything() -> bool:
        return await desk.drained("REGISTRY") and await desk.drained("BOOKING")

    await wait_until(everything)
    window = {"from": T1.isoformat(), "to": (T1 + timedelta(hours=1)).isoformat()}
    response = await desk.client.get("/api/v1/audit", headers=SUE, params=window)
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert [i["action"] for i in items] == ["patient.search", "appointment.book", "patient.lookup"]  # newest first
    booking = items[1]
    assert booking == {**booking, "actor": "bob", "role": "agent", "on_behalf_of": "A81001",
                       "target_kind": "appointment", "target_id": "appt-1", "nhs_number": NHS,
                       "service": "booking-svc"}
    assert datetime.fromisoformat(booking["at"]) == T1 + timedelta(minutes=5)
    assert items[2]["service"] == "practice-registry-svc" and items[2]["nhs_number"] == NHS
    assert items[2]["query_kind"] == "nhs_number" and items[2]["result_count"] == 1

    async def search(**params: str) -> list[str]:
        found = await desk.client.get("/api/v1/audit", headers=ADAM, params={**window, **params})
        assert found.status_code == 200, found.text
        return [i["action"] for i in found.json()["items"]]

    assert await search(actor="bob") == ["patient.search", "appointment.book"]
    assert await search(nhs_number="943 476 5919") == ["appointment.book", "patient.lookup"]
    assert await search(nhs_number="943-476-5919", actor="alice") == ["patient.lookup"]
    narrow = {"from": (T1 + timedelta(minutes=1)).isoformat(), "to": (T1 + timedelta(minutes=6)).isoformat()}
    assert await search(**narrow) == ["appointment.book"]
    # A time without an offset is London time (GMT in March): 09:04 London = 09:04 UTC.
    assert await search(**{"from": "2024-03-04T09:04:00", "to": "2024-03-04T09:06:00"}) == ["appointment.book"]

    first = await desk.client.get("/api/v1/audit", headers=SUE, params={**window, "limit": 2})
    assert [i["action"] for i in first.json()["items"]] == ["patient.search", "appointment.book"]
    rest = await desk.client.get("/api/v1/audit", headers=SUE,
                                 params={**window, "limit": 2, "cursor": first.json()["next_cursor"]})
    assert [i["action"] for i in rest.json()["items"]] == ["patient.lookup"]
    assert rest.json()["next_cursor"] is None

    for caller in (staff("alice"), practice("A81001")):
        refused = await desk.client.get("/api/v1/audit", headers=caller)
        assert refused.status_code == 403 and refused.json()["code"] == "forbidden_role"
    for bad in ({"nhs_number": "123"}, {"from": "2024-03-05T00:00:00Z", "to": "2024-03-04T00:00:00Z"},
                {"cursor": "not-a-cursor"}, {"from": "yesterday"}):
        assert (await desk.client.get("/api/v1/audit", headers=SUE, params=bad)).status_code == 422, bad
    assert (await desk.client.get("/api/v1/audit", headers=SUE, params={"limit": 100000})).status_code == 200

    # Searching the trail by patient is itself audited, through this service's own events.
    async def own_search_recorded() -> list[dict]:
        found = await desk.client.get("/api/v1/audit", headers=SUE, params={"actor": "adam"})
        return [i for i in found.json()["items"] if i["action"] == "audit.search" and i["nhs_number"] == NHS]

    recorded = await wait_until(own_search_recorded)
    assert recorded[0]["service"] == "agent-desk-svc" and recorded[0]["query_kind"] == "by_patient"


async def test_an_audit_event_redelivered_after_its_inbox_row_was_pruned_is_kept_once(desk: Desk) -> None:
    """The inbox forgets old event ids (retention); the audit trail's own key still keeps one record per event."""
    lookup = await desk.publish(RegistryAuditRecorded(
        actor="carol", role="agent", action="patient.lookup", target_kind="patient", nhs_number=NHS,
        query_kind="nhs_number", result_count=1, at=T1), subject_key="carol")
    await wait_until(lambda: desk.drained("REGISTRY"))
    async with desk.app.state.db.session() as session:
        await session.execute(delete(inbox_table))
        await session.commit()
    await desk.republish(lookup, msg_id="after-pruning")
    await wait_until(lambda: desk.drained("REGISTRY"))
    async with desk.app.state.db.session() as session:
        ids = (await session.execute(select(AuditRecord.id).where(AuditRecord.actor == "carol"))).scalars().all()
        inbox_ids = (await session.execute(select(inbox_table.c.event_id))).scalars().all()
    assert ids == [str(lookup.id)]
    assert inbox_ids == [str(lookup.id)]  # it was applied again (the inbox did not know it), and stored once


async def test_every_appointment_change_is_kept_as_its_own_audit_record(desk: Desk) -> None:
    """booking-svc publishes one event per appointment change, which is also its audit record: who, in what role,
    for which practice, when; a cancellation's reason, a move's origin and a displacement's cause as the detail."""
    start = T1 + timedelta(days=2)
    common = {"ods_code": "A81001", "nhs_number": NHS, "slot_start": start, "slot_end": start + timedelta(minutes=10),
              "clinician_id": "C1", "slot_type": "routine", "channel": "in_person", "version": 1}
    changes = [
        (AppointmentBooked(**common, appointment_id="ap-1", slot_id="s1", status="booked", actor="bob",
                           actor_role="agent", booking_reference="ABCD2345", free_slots_by_date={"2024-03-06": 9}),
         "appointment.book", None),
        (AppointmentCancelled(**common, appointment_id="ap-1", slot_id="s1", status="cancelled", actor="sue",
                              actor_role="supervisor", reason="patient asked"), "appointment.cancel", "patient asked"),
        (AppointmentRescheduled(**common, appointment_id="ap-3", slot_id="s3", status="booked", actor="bob",
                                actor_role="agent", previous_appointment_id="ap-2", previous_slot_id="s2",
                                previous_slot_start=start), "appointment.reschedule", "from ap-2"),
        (AppointmentStatusChanged(**common, appointment_id="ap-3", slot_id="s3", status="arrived",
                                  actor="key-A81001", actor_role="practice"), "appointment.arrived", None),
        (AppointmentDisplaced(**common, appointment_id="ap-4", slot_id="s4", status="displaced", actor="key-A81001",
                              actor_role="practice"), "appointment.displace", "slot removed by a rota change"),
    ]
    envelopes = [await desk.publish(event, subject_key="A81001", occurred_at=T1 + timedelta(minutes=n))
                 for n, (event, _action, _detail) in enumerate(changes)]
    await desk.republish(envelopes[0], msg_id="redelivered")  # kept once
    await wait_until(lambda: desk.drained("BOOKING"))

    response = await desk.client.get("/api/v1/audit", headers=SUE, params={"nhs_number": NHS})
    assert response.status_code == 200, response.text
    items = list(reversed(response.json()["items"]))  # oldest first
    assert [(i["action"], i["detail"]) for i in items] == [(action, detail) for _e, action, detail in changes]
    for item, envelope, (event, _action, _detail) in zip(items, envelopes, changes, strict=True):
        assert item == {**item, "id": str(envelope.id), "service": "booking-svc", "actor": event.actor,
                        "role": event.actor_role, "on_behalf_of": "A81001", "target_kind": "appointment",
                        "target_id": event.appointment_id, "nhs_number": NHS}
        assert datetime.fromisoformat(item["at"]) == envelope.occurred_at
