"""booking-svc keeps its own copy of registry data from real registry events on a real nats-server, applies only
newer versions, and works from that copy."""

from __future__ import annotations

import asyncio

import nats
from nats.js.errors import NotFoundError

from services.contracts.registry import (
    Clinician,
    CliniciansReplaced,
    PatientsSynced,
    PracticeCreated,
    PracticeUpdated,
    Registration,
    SlotTypesReplaced,
)
from services.events import Envelope, EventData
from tests.booking_svc.conftest import CLINICIANS, SLOT_TYPES, TOMORROW, Booking, nhs, rota, session
from tests.support.apps import AGENT, practice, wait_until

A = "A81001"


async def publish(js, *events: EventData) -> list[str]:
    ids = []
    for event in events:
        envelope = Envelope.wrap(event, producer="practice-registry-svc", subject_key=event.ods_code,
                                 correlation_id=None)
        await js.publish(envelope.subject, envelope.model_dump_json().encode(), headers={"Nats-Msg-Id": str(envelope.id)})
        ids.append(str(envelope.id))
    return ids


async def stream_subjects(js, stream: str) -> list[str]:
    try:
        info = await js.stream_info(stream)
    except NotFoundError:
        return []
    if not info.state.messages:
        return []
    return [(await js.get_msg(stream, seq)).subject for seq in range(info.state.first_seq, info.state.last_seq + 1)]


async def test_the_local_copy_follows_registry_events_and_ignores_stale_ones(booking: Booking):
    await asyncio.wait_for(booking.app.state.messaging.ready.wait(), 10)
    nc = await nats.connect(booking.nats_url)
    js = nc.jetstream()
    try:
        await publish(js,
                      PracticeCreated(ods_code=A, name="Abbey Road", pcn="PCN-1", version=1),
                      CliniciansReplaced(ods_code=A, clinicians=CLINICIANS, version=2),
                      SlotTypesReplaced(ods_code=A, slot_types=SLOT_TYPES, version=3),
                      PatientsSynced(ods_code=A, registered=[Registration(nhs_number=nhs(1)),
                                                             Registration(nhs_number=nhs(2))]))
        body = rota([session("am", TOMORROW, "09:00", "10:00")])

        async def rota_accepted() -> bool:
            return (await booking.put_rota(A, body, headers=practice(A))).status_code == 200

        await wait_until(rota_accepted)
        slots = [s["id"] for s in await booking.slots(AGENT, practice=A)]

        async def book(slot_id: str, patient: str):
            return await booking.client.post("/api/v1/appointments", headers=AGENT,
                                             json={"slot_id": slot_id, "nhs_number": patient})

        assert (await book(slots[0], nhs(1))).status_code == 201

        # A later chunk deregisters a patient: booking-svc no longer books them.
        await publish(js, PatientsSynced(ods_code=A, registered=[], deregistered=[nhs(2)]))

        async def deregistered() -> bool:
            return await booking.sql("SELECT nhs_number FROM registrations WHERE nhs_number = :n", n=nhs(2)) == []

        await wait_until(deregistered)
        refused = await book(slots[1], nhs(2))
        assert refused.status_code == 409 and refused.json()["code"] == "not_registered"

        # Suspended (version 5); then a late, older update (version 4) arrives and must not undo it.
        await publish(js, PracticeUpdated(ods_code=A, name="Abbey Road", pcn="PCN-1", status="suspended", version=5))

        async def nothing_offered() -> bool:
            return await booking.slots(AGENT, practice=A) == []

        await wait_until(nothing_offered)
        [late] = await publish(js, PracticeUpdated(ods_code=A, name="Old name", pcn="PCN-1", status="active", version=4),
                               )
        stale_clinicians = await publish(js, CliniciansReplaced(
            ods_code=A, clinicians=[Clinician(clinician_id="X9", name="Dr Old", role="gp")], version=1))

        async def applied(event_id: str) -> bool:
            return bool(await booking.sql("SELECT 1 FROM inbox WHERE event_id = :e", e=event_id))

        await wait_until(lambda: applied(late))
        await wait_until(lambda: applied(stale_clinicians[0]))
        assert await booking.sql("SELECT name, status, version FROM practices") == [("Abbey Road", "suspended", 5)]
        assert {r[0] for r in await booking.sql("SELECT clinician_id FROM clinicians")} == {"C1", "C2", "N1"}
        assert await booking.slots(AGENT, practice=A) == []
        held = await booking.client.post("/api/v1/holds", json={"slot_id": slots[2]}, headers=AGENT)
        assert held.status_code == 409 and held.json()["code"] == "practice_suspended"

        # What booking-svc did reached its own stream through the outbox relay.
        async def relayed() -> bool:
            subjects = await stream_subjects(js, "BOOKING")
            return {"booking.slots.published.v1", "booking.appointment.booked.v1",
                    "booking.availability.changed.v1", "booking.audit.recorded.v1"} <= set(subjects)

        await wait_until(relayed)
    finally:
        await nc.close()
