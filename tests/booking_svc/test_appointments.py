"""Booking, reading, cancelling, rescheduling and recording outcomes, with the rules that guard each."""

from __future__ import annotations

import re
from datetime import timedelta

from tests.booking_svc.conftest import TOMORROW, Booking, nhs, rota, session
from tests.support.apps import ADMIN, AGENT, identity, practice

AGENT2 = identity("agent", "agent2")
A, B, OUTSIDE = "A81001", "A81002", "Z99999"


async def seed(booking: Booking) -> None:
    await booking.seed_practice(A, pcn="PCN-1", patients=[nhs(1), nhs(2)])
    await booking.seed_practice(B, pcn="PCN-1", patients=[nhs(3)])
    await booking.seed_practice(OUTSIDE, pcn="PCN-2", patients=[nhs(4)])
    day_after = TOMORROW + timedelta(days=1)
    body = rota([
        session("r1", TOMORROW, "09:00", "10:00"),
        session("s1", TOMORROW, "10:00", "11:00", slot_type="SHARED"),
        session("u1", day_after, "09:00", "10:00", clinician="C2", slot_type="URGENT"),
        session("n1", TOMORROW, "09:00", "10:00", clinician="N1", slot_type="INTERNAL"),
        session("far", TOMORROW + timedelta(days=29), "09:00", "10:00", clinician="C2"),
    ], days=35)
    assert (await booking.put_rota(A, body)).status_code == 200


async def slot_of(booking: Booking, session_id: str, n: int = 0) -> str:
    rows = await booking.sql("SELECT id FROM slots WHERE session_id = :s ORDER BY start_at", s=session_id)
    return rows[n][0]


async def test_booking_a_slot_publishes_audits_and_feeds_in_one_go(booking: Booking):
    await seed(booking)
    slot_id = await slot_of(booking, "r1")
    events_before = len(await booking.events())
    booked = await booking.client.post("/api/v1/appointments", headers=AGENT, json={
        "slot_id": slot_id, "nhs_number": "999 " + nhs(1)[3:6] + " " + nhs(1)[6:], "reason": "cough"})
    assert booked.status_code == 201, booked.text
    body = booked.json()
    assert body["status"] == "booked" and body["version"] == 1 and body["practice"] == A
    assert body["id"].isalpha()  # no digits for the logs' NHS-number mask to rewrite (services.ids)
    assert body["nhs_number"] == nhs(1) and body["slot"]["id"] == slot_id == body["slot_id"]
    assert body["slot"]["start"] == "2027-01-12T09:00:00+00:00"
    assert body["slot"]["clinician"] == {"id": "C1", "name": "Dr Asha Patel", "role": "gp", "gender": "female"}
    assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{8}", body["booking_reference"])
    assert booked.headers["etag"] == '"1"'

    # One event: the booking, which is also its audit record (who, in what role, for which practice, when) and
    # the day's new free-slot count.
    [event] = (await booking.events())[events_before:]
    assert event["type"] == "booking.appointment.booked" and event["subject_key"] == A
    assert event["data"]["appointment_id"] == body["id"] and event["data"]["booking_reference"] == body["booking_reference"]
    assert {"actor": "agent1", "actor_role": "agent", "ods_code": A, "nhs_number": nhs(1), "slot_id": slot_id,
            "free_slots_by_date": {"2027-01-12": 17}}.items() <= event["data"].items()
    assert event["occurred_at"]
    feed = (await booking.client.get(f"/api/v1/feed/{A}", headers=practice(A))).json()
    assert [(i["kind"], i["appointment_id"]) for i in feed["items"]] == [("booked", body["id"])]

    read = await booking.client.get(f"/api/v1/appointments/{body['id']}", headers=AGENT2)
    assert read.status_code == 200 and read.headers["etag"] == '"1"' and read.json() == body
    assert (await booking.client.get(f"/api/v1/appointments/{body['id']}", headers=practice(B))).status_code == 403
    assert (await booking.client.get("/api/v1/appointments/nope", headers=AGENT)).status_code == 404
    reads = [e["data"] for e in await booking.events("booking.audit.recorded.v1") if e["data"]["action"] == "appointment.read"]
    assert reads and reads[-1]["actor"] == "agent2" and reads[-1]["nhs_number"] == nhs(1)


async def test_the_booking_rules_refuse_with_their_codes_and_change_nothing(booking: Booking):
    await seed(booking)
    routine, shared = await slot_of(booking, "r1"), await slot_of(booking, "s1")
    urgent, internal, far = await slot_of(booking, "u1"), await slot_of(booking, "n1"), await slot_of(booking, "far")

    async def book(slot_id: str, patient: str, headers=AGENT, **extra) -> tuple[int, str | None]:
        r = await booking.client.post("/api/v1/appointments", headers=headers,
                                      json={"slot_id": slot_id, "nhs_number": patient, **extra})
        return r.status_code, r.json().get("code")

    assert await book(routine, "9434765918") == (422, "invalid_nhs_number")
    assert await book(routine, "12345") == (422, "invalid_nhs_number")
    assert await book(routine, nhs(3)) == (409, "not_registered")  # registered at a PCN partner; slot not shared
    assert await book(shared, nhs(4)) == (409, "not_registered")  # registered outside the PCN
    assert await book(urgent, nhs(1)) == (409, "embargoed")  # released at 08:00 on its own day
    assert await book(far, nhs(1)) == (409, "outside_booking_window")  # 30 days ahead, max 28
    assert await book(internal, nhs(1)) == (409, "not_bookable_by_centre")
    assert await book("no-such-slot", nhs(1)) == (404, "slot_not_found")
    assert await book(routine, nhs(1), headers=practice(B)) == (403, "other_practice")
    assert await booking.sql("SELECT id FROM appointments") == []
    assert await booking.events("booking.appointment.booked.v1") == []

    # A PCN partner's patient may take a slot shared with the PCN; the appointment remembers where they are registered.
    status, _ = await book(shared, nhs(3))
    assert status == 201
    [[registered_at]] = await booking.sql("SELECT registered_ods_code FROM appointments")
    assert registered_at == B
    assert await book(shared, nhs(1)) == (409, "slot_taken")

    # The release time passes and the slot's day comes into the window: the same requests now succeed.
    booking.clock.now = booking.clock.now.replace(day=13, hour=8, minute=0)
    assert (await book(urgent, nhs(1)))[0] == 201
    booking.clock.advance(days=2)
    assert (await book(far, nhs(1)))[0] == 201

    # Minimum notice: a NOTICE slot (120 minutes) an hour away is refused, one three hours away is not.
    assert (await booking.put_rota(A, rota([session("v1", booking.clock.now.date(), "09:00", "12:00",
                                                    clinician="C2", slot_type="NOTICE", minutes=60)],
                                           start=booking.clock.now.date(), days=1))).status_code == 200
    assert await book(await slot_of(booking, "v1", 0), nhs(2)) == (409, "outside_booking_window")
    assert (await book(await slot_of(booking, "v1", 2), nhs(2)))[0] == 201


async def test_holds_belong_to_their_holder(booking: Booking):
    await seed(booking)
    slot_id = await slot_of(booking, "r1")
    hold = await booking.client.post("/api/v1/holds", json={"slot_id": slot_id}, headers=AGENT)
    assert hold.status_code == 201
    assert hold.json()["expires_at"] == "2027-01-11T09:02:00+00:00"
    hold_id = hold.json()["hold_id"]
    assert hold_id.isalpha()
    other = await booking.client.post("/api/v1/holds", json={"slot_id": slot_id}, headers=AGENT2)
    assert other.status_code == 409 and other.json()["code"] == "slot_held"
    stolen = await booking.client.post("/api/v1/appointments", headers=AGENT2,
                                       json={"slot_id": slot_id, "hold_id": hold_id, "nhs_number": nhs(1)})
    assert stolen.status_code == 409 and stolen.json()["code"] == "slot_held"
    assert (await booking.client.delete(f"/api/v1/holds/{hold_id}", headers=AGENT2)).status_code == 403
    without_hold = await booking.client.post("/api/v1/appointments", headers=AGENT,
                                             json={"slot_id": slot_id, "nhs_number": nhs(1)})
    assert without_hold.status_code == 409 and without_hold.json()["code"] == "slot_held"
    booked = await booking.client.post("/api/v1/appointments", headers=AGENT,
                                       json={"slot_id": slot_id, "hold_id": hold_id, "nhs_number": nhs(1)})
    assert booked.status_code == 201
    taken = await booking.client.post("/api/v1/holds", json={"slot_id": slot_id}, headers=AGENT2)
    assert taken.status_code == 409 and taken.json()["code"] == "slot_taken"
    # The hold was used up by the booking: releasing it now finds nothing.
    assert (await booking.client.delete(f"/api/v1/holds/{hold_id}", headers=AGENT)).status_code == 404

    second = await slot_of(booking, "r1", 1)
    hold2 = (await booking.client.post("/api/v1/holds", json={"slot_id": second}, headers=AGENT)).json()
    assert second not in [s["id"] for s in await booking.slots(AGENT, practice=A)]
    assert (await booking.client.delete(f"/api/v1/holds/{hold2['hold_id']}", headers=AGENT)).status_code == 204
    assert second in [s["id"] for s in await booking.slots(AGENT, practice=A)]
    released = (await booking.events("booking.availability.changed.v1"))[-1]["data"]
    assert released["freed_slot_ids"] == [second]


async def test_cancel_honours_if_match_and_frees_the_slot(booking: Booking):
    await seed(booking)
    slot_id = await slot_of(booking, "r1")
    appointment = (await booking.client.post("/api/v1/appointments", headers=AGENT,
                                             json={"slot_id": slot_id, "nhs_number": nhs(1)})).json()
    url = f"/api/v1/appointments/{appointment['id']}"
    stale = await booking.client.post(f"{url}/cancel", json={"reason": "x"}, headers={**AGENT, "If-Match": '"7"'})
    assert stale.status_code == 412 and stale.json()["code"] == "stale_version"
    assert (await booking.client.post(f"{url}/cancel", json={}, headers=practice(B))).status_code == 403
    assert (await booking.client.get(url, headers=AGENT)).json()["status"] == "booked"

    cancelled = await booking.client.post(f"{url}/cancel", json={"reason": "better"},
                                          headers={**AGENT, "If-Match": '"1"'})
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled" and cancelled.json()["version"] == 2
    assert cancelled.json()["cancel_reason"] == "better" and cancelled.headers["etag"] == '"2"'
    assert slot_id in [s["id"] for s in await booking.slots(AGENT, practice=A)]
    again = await booking.client.post(f"{url}/cancel", json={}, headers=AGENT)
    assert again.status_code == 409 and again.json()["code"] == "appointment_not_active"
    [event] = await booking.events("booking.appointment.cancelled.v1")
    assert event["data"]["status"] == "cancelled" and event["data"]["version"] == 2 and event["data"]["reason"] == "better"
    assert event["data"]["slot_id"] == slot_id and event["data"]["free_slots_by_date"] == {"2027-01-12": 18}
    # The freed slot can be booked again (the partial unique index ignores the cancelled appointment).
    rebooked = await booking.client.post("/api/v1/appointments", headers=AGENT2,
                                         json={"slot_id": slot_id, "nhs_number": nhs(2)})
    assert rebooked.status_code == 201

    # Only future appointments can be cancelled or moved.
    booking.clock.advance(days=1, minutes=5)  # 2027-01-12 09:05, the slot began at 09:00
    past = await booking.client.post(f"/api/v1/appointments/{rebooked.json()['id']}/cancel", json={}, headers=AGENT)
    assert past.status_code == 409 and past.json()["code"] == "appointment_in_past"
    moved = await booking.client.post(f"/api/v1/appointments/{rebooked.json()['id']}/reschedule",
                                      json={"slot_id": await slot_of(booking, "r1", 3)}, headers=AGENT)
    assert moved.status_code == 409 and moved.json()["code"] == "appointment_in_past"


async def test_reschedule_secures_the_new_slot_or_changes_nothing(booking: Booking):
    await seed(booking)
    first, second, third = [await slot_of(booking, "r1", n) for n in range(3)]
    mine = (await booking.client.post("/api/v1/appointments", headers=AGENT,
                                      json={"slot_id": first, "nhs_number": nhs(1), "reason": "rash"})).json()
    theirs = await booking.client.post("/api/v1/appointments", headers=AGENT2,
                                       json={"slot_id": second, "nhs_number": nhs(2)})
    assert theirs.status_code == 201
    events_before = len(await booking.events())

    refused = await booking.client.post(f"/api/v1/appointments/{mine['id']}/reschedule", json={"slot_id": second},
                                        headers=AGENT)
    assert refused.status_code == 409 and refused.json()["code"] == "slot_taken"
    after = (await booking.client.get(f"/api/v1/appointments/{mine['id']}", headers=AGENT)).json()
    assert after["status"] == "booked" and after["version"] == 1 and after["slot_id"] == first
    assert first not in [s["id"] for s in await booking.slots(AGENT, practice=A)]
    assert await booking.sql("SELECT status FROM slots WHERE id IN (:a, :b)", a=first, b=second) == [("booked",), ("booked",)]
    # Only the read's audit record was added: no booking events, no feed entries.
    assert [e["type"] for e in (await booking.events())[events_before:]] == ["booking.audit.recorded"]

    stale = await booking.client.post(f"/api/v1/appointments/{mine['id']}/reschedule", json={"slot_id": third},
                                      headers={**AGENT, "If-Match": '"2"'})
    assert stale.status_code == 412
    moved = await booking.client.post(f"/api/v1/appointments/{mine['id']}/reschedule", json={"slot_id": third},
                                      headers={**AGENT, "If-Match": '"1"'})
    assert moved.status_code == 201, moved.text
    new = moved.json()
    assert new["id"] != mine["id"] and new["slot_id"] == third and new["status"] == "booked"
    assert new["rescheduled_from"] == mine["id"] and new["reason"] == "rash" and new["nhs_number"] == nhs(1)
    old = (await booking.client.get(f"/api/v1/appointments/{mine['id']}", headers=AGENT)).json()
    assert old["status"] == "rescheduled" and old["rescheduled_to"] == new["id"] and old["version"] == 2
    free = [s["id"] for s in await booking.slots(AGENT, practice=A)]
    assert first in free and third not in free
    [event] = await booking.events("booking.appointment.rescheduled.v1")
    assert event["data"]["appointment_id"] == new["id"] and event["data"]["previous_appointment_id"] == mine["id"]
    assert event["data"]["previous_slot_id"] == first and event["data"]["slot_id"] == third
    # One practice, one day: the move's event counts it (one slot taken, one freed) and is its audit record.
    assert event["data"]["previous_ods_code"] == A and event["data"]["free_slots_by_date"] == {"2027-01-12": 16}
    assert event["data"]["actor"] == "agent1" and event["data"]["actor_role"] == "agent"
    feed = (await booking.client.get(f"/api/v1/feed/{A}", headers=ADMIN)).json()["items"]
    assert [i["kind"] for i in feed] == ["booked", "booked", "rescheduled"]
    assert feed[-1]["previous_appointment_id"] == mine["id"] and feed[-1]["appointment"]["id"] == new["id"]


async def test_the_practice_records_what_happened(booking: Booking):
    await seed(booking)
    slot_id = await slot_of(booking, "r1")
    appointment = (await booking.client.post("/api/v1/appointments", headers=AGENT,
                                             json={"slot_id": slot_id, "nhs_number": nhs(1)})).json()
    url = f"/api/v1/appointments/{appointment['id']}/status"
    assert (await booking.client.post(url, json={"status": "arrived"}, headers=AGENT)).status_code == 403
    assert (await booking.client.post(url, json={"status": "arrived"}, headers=practice(B))).status_code == 403
    assert (await booking.client.post(url, json={"status": "lost"}, headers=practice(A))).status_code == 422
    arrived = await booking.client.post(url, json={"status": "arrived"}, headers=practice(A))
    assert arrived.status_code == 200 and arrived.json()["status"] == "arrived" and arrived.json()["version"] == 2
    wrong = await booking.client.post(url, json={"status": "did_not_attend"}, headers=practice(A))
    assert wrong.status_code == 409 and wrong.json()["code"] == "invalid_transition"
    done = await booking.client.post(url, json={"status": "completed"}, headers={**ADMIN, "If-Match": '"2"'})
    assert done.status_code == 200 and done.json()["version"] == 3
    changed = await booking.events("booking.appointment.status_changed.v1")
    assert [(e["data"]["status"], e["data"]["version"]) for e in changed] == [("arrived", 2), ("completed", 3)]
    feed = (await booking.client.get(f"/api/v1/feed/{A}", headers=practice(A))).json()["items"]
    assert [i["kind"] for i in feed] == ["booked", "status_changed", "status_changed"]
    # A completed appointment still occupies its slot.
    assert slot_id not in [s["id"] for s in await booking.slots(AGENT, practice=A)]


async def test_listing_appointments_is_scoped_and_audited(booking: Booking):
    await seed(booking)
    for n, (patient, slot_session) in enumerate([(nhs(1), "r1"), (nhs(2), "r1"), (nhs(3), "s1")]):
        r = await booking.client.post("/api/v1/appointments", headers=AGENT,
                                      json={"slot_id": await slot_of(booking, slot_session, n), "nhs_number": patient})
        assert r.status_code == 201
    by_patient = await booking.client.get("/api/v1/appointments", params={"nhs_number": nhs(1)}, headers=AGENT)
    assert by_patient.status_code == 200
    assert [a["nhs_number"] for a in by_patient.json()["items"]] == [nhs(1)]
    audit = (await booking.events("booking.audit.recorded.v1"))[-1]["data"]
    assert audit["action"] == "appointment.search" and audit["nhs_number"] == nhs(1)
    assert audit["query_kind"] == "nhs_number" and audit["result_count"] == 1 and audit["actor"] == "agent1"
    bad = await booking.client.get("/api/v1/appointments", params={"nhs_number": "123"}, headers=AGENT)
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_nhs_number"

    # B's key sees the appointment of its own patient in A's shared slot, and nothing else; not A's book.
    own = (await booking.client.get("/api/v1/appointments", headers=practice(B))).json()["items"]
    assert [a["nhs_number"] for a in own] == [nhs(3)]
    assert (await booking.client.get("/api/v1/appointments", params={"practice": A},
                                     headers=practice(B))).status_code == 403
    paged = await booking.client.get("/api/v1/appointments", params={"practice": A, "limit": 2}, headers=practice(A))
    rest = await booking.client.get("/api/v1/appointments", params={"practice": A, "cursor": paged.json()["next_cursor"]},
                                    headers=practice(A))
    assert len(paged.json()["items"]) == 2 and len(rest.json()["items"]) == 1 and rest.json()["next_cursor"] is None
    window = await booking.client.get("/api/v1/appointments", headers=AGENT,
                                      params={"from": "2027-01-12T09:05:00", "to": "2027-01-12", "status": "booked"})
    assert len(window.json()["items"]) == 2


async def test_a_booking_reference_already_in_use_is_drawn_again(booking: Booking, monkeypatch):
    """References are random; the unique index, not a lookup, catches a repeat, and the booking draws again."""
    from booking_svc.appointments import service

    await seed(booking)
    first_slot, second_slot = await slot_of(booking, "r1", 0), await slot_of(booking, "r1", 1)
    draws = iter("AAAAAAAA" "AAAAAAAA" "BBBBBBBB")  # the second booking's first draw repeats the first's
    monkeypatch.setattr(service.secrets, "choice", lambda _alphabet: next(draws))
    first = await booking.client.post("/api/v1/appointments", headers=AGENT,
                                      json={"slot_id": first_slot, "nhs_number": nhs(1)})
    second = await booking.client.post("/api/v1/appointments", headers=AGENT,
                                       json={"slot_id": second_slot, "nhs_number": nhs(2)})
    assert first.status_code == second.status_code == 201, (first.text, second.text)
    assert (first.json()["booking_reference"], second.json()["booking_reference"]) == ("AAAAAAAA", "BBBBBBBB")
    rows = await booking.sql("SELECT booking_reference, slot_id FROM appointments ORDER BY booking_reference")
    assert [tuple(r) for r in rows] == [("AAAAAAAA", first_slot), ("BBBBBBBB", second_slot)]
    feed = (await booking.client.get(f"/api/v1/feed/{A}", headers=practice(A))).json()["items"]
    assert [i["appointment"]["booking_reference"] for i in feed] == ["AAAAAAAA", "BBBBBBBB"]
    [_, event] = await booking.events("booking.appointment.booked.v1")
    assert event["data"]["booking_reference"] == "BBBBBBBB"
