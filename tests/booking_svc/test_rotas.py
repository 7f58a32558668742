"""PUT /api/v1/rotas/{ods}: sessions become slots on London wall time, replacement by id sets, displacement."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from booking_svc.rotas.schemas import RotaSessionIn
from booking_svc.rotas.service import plan_session

from tests.booking_svc.conftest import TOMORROW, Booking, nhs, rota, session
from tests.support.apps import ADMIN, AGENT, identity, practice

A, B = "A81001", "A81002"


async def slot_ids(booking: Booking, ods: str = A) -> set[str]:
    return {r[0] for r in await booking.sql("SELECT id FROM slots WHERE ods_code = :o", o=ods)}


async def test_a_rota_becomes_slots_and_the_same_body_twice_changes_nothing(booking: Booking):
    await booking.seed_practice(A)
    body = rota([session("am", TOMORROW, "09:00", "12:00"),
                 session("pm", TOMORROW, "14:00", "15:00", clinician="C2", minutes=15)])
    first = await booking.put_rota(A, body, headers=practice(A))
    assert first.status_code == 200, first.text
    assert first.json() == {"created": 22, "removed": 0, "unchanged": 0, "displaced": 0}
    ids = await slot_ids(booking)
    again = await booking.put_rota(A, body, headers=practice(A))
    assert again.json() == {"created": 0, "removed": 0, "unchanged": 22, "displaced": 0}
    assert await slot_ids(booking) == ids

    found = await booking.slots(AGENT, practice=A)
    assert [s["start"] for s in found[:2]] == ["2027-01-12T09:00:00+00:00", "2027-01-12T09:10:00+00:00"]
    assert found[-1] == {"id": found[-1]["id"], "practice": A, "start": "2027-01-12T14:45:00+00:00",
                         "end": "2027-01-12T15:00:00+00:00", "slot_type": "ROUTINE", "channel": "in_person",
                         "clinician": {"id": "C2", "name": "Dr Tom Reid", "role": "gp", "gender": "male"},
                         "pcn_partner": False}
    published = [e["data"] for e in await booking.events("booking.slots.published.v1")]
    assert [(p["created"], p["unchanged"]) for p in published] == [(22, 0), (0, 22)]
    assert published[0]["from_date"] == "2027-01-12" and published[0]["to_date"] == "2027-01-26"
    availability = [e["data"] for e in await booking.events("booking.availability.changed.v1")]
    assert availability == [{"ods_code": A, "free_slots_by_date": {"2027-01-12": 22}, "taken_slot_ids": [],
                             "freed_slot_ids": []}]


async def test_who_may_publish_a_rota(booking: Booking):
    await booking.seed_practice(A)
    await booking.seed_practice(B)
    body = rota([session("am", TOMORROW, "09:00", "10:00")])
    assert (await booking.put_rota(A, body, headers=practice(B))).json()["code"] == "other_practice"
    assert (await booking.put_rota(A, body, headers=AGENT)).status_code == 403
    assert (await booking.put_rota(A, body, headers=identity("supervisor"))).status_code == 403
    unknown = await booking.put_rota("Q00000", body, headers=ADMIN)
    assert unknown.status_code == 404 and unknown.json()["code"] == "unknown_practice"
    assert await slot_ids(booking) == set()
    assert (await booking.put_rota(A, body, headers=ADMIN)).status_code == 200


async def test_a_changed_rota_removes_free_and_held_slots_and_displaces_booked_ones(booking: Booking):
    await booking.seed_practice(A, patients=[nhs(1), nhs(2)])
    before = rota([session("am", TOMORROW, "09:00", "10:00"),
                   session("pm", TOMORROW, "14:00", "15:00", clinician="C2")])
    assert (await booking.put_rota(A, before)).status_code == 200
    am = [s for s in await booking.slots(AGENT, practice=A) if s["clinician"]["id"] == "C1"]
    booked = (await booking.client.post("/api/v1/appointments", headers=AGENT,
                                        json={"slot_id": am[0]["id"], "nhs_number": nhs(1)})).json()
    cancelled = (await booking.client.post("/api/v1/appointments", headers=AGENT,
                                           json={"slot_id": am[1]["id"], "nhs_number": nhs(2)})).json()
    assert (await booking.client.post(f"/api/v1/appointments/{cancelled['id']}/cancel", json={},
                                      headers=AGENT)).status_code == 200
    hold = (await booking.client.post("/api/v1/holds", json={"slot_id": am[2]["id"]}, headers=AGENT)).json()

    # The morning moves half an hour later; the afternoon goes; an evening session appears.
    after = rota([session("am", TOMORROW, "09:30", "10:30"),
                  session("eve", TOMORROW, "18:00", "18:30", clinician="C2")])
    changed = await booking.put_rota(A, after, headers=practice(A))
    assert changed.json() == {"created": 3 + 3, "removed": 3 + 6, "unchanged": 3, "displaced": 1}

    moved = (await booking.client.get(f"/api/v1/appointments/{booked['id']}", headers=AGENT)).json()
    assert moved["status"] == "displaced" and moved["version"] == 2
    assert (await booking.client.get(f"/api/v1/appointments/{cancelled['id']}", headers=AGENT)).json()["status"] == "cancelled"
    [event] = await booking.events("booking.appointment.displaced.v1")
    assert event["data"]["appointment_id"] == booked["id"] and event["data"]["nhs_number"] == nhs(1)
    assert event["data"]["status"] == "displaced" and event["data"]["actor_role"] == "practice"
    # The displacement is its own audit record, naming the practice's key that sent the rota.
    audits = [e["data"] for e in await booking.events("booking.audit.recorded.v1")]
    [replaced] = [a for a in audits if a["action"] == "rota.replace" and a["on_behalf_of"] == A][-1:]
    assert event["data"]["actor"] == replaced["actor"] == "key-A81001" and event["data"]["ods_code"] == A
    feed = (await booking.client.get(f"/api/v1/feed/{A}", headers=practice(A))).json()["items"]
    assert [i["kind"] for i in feed] == ["booked", "booked", "cancelled", "displaced"]
    assert feed[-1]["appointment"]["status"] == "displaced"
    # The held slot is gone, and with it the hold.
    assert (await booking.client.delete(f"/api/v1/holds/{hold['hold_id']}", headers=AGENT)).status_code == 404
    gone = {s["id"] for s in am[:3]}
    assert not gone & await slot_ids(booking)
    availability = (await booking.events("booking.availability.changed.v1"))[-1]["data"]
    assert gone <= set(availability["taken_slot_ids"]) and availability["free_slots_by_date"] == {"2027-01-12": 9}
    # The rebooking of a displaced appointment's patient is possible: the displaced one no longer holds a slot.
    assert await booking.sql("SELECT count(*) FROM appointments WHERE status = 'booked'") == [(0,)]


async def test_slots_that_have_started_are_history_a_rota_does_not_touch(booking: Booking):
    await booking.seed_practice(A, patients=[nhs(1)])
    assert (await booking.put_rota(A, rota([session("am", TOMORROW, "09:00", "10:00")]))).status_code == 200
    first = (await booking.slots(AGENT, practice=A))[0]
    appointment = (await booking.client.post("/api/v1/appointments", headers=AGENT,
                                             json={"slot_id": first["id"], "nhs_number": nhs(1)})).json()
    booking.clock.now = datetime(2027, 1, 12, 9, 25, tzinfo=timezone.utc)
    emptied = await booking.put_rota(A, rota([]))
    assert emptied.json() == {"created": 0, "removed": 3, "unchanged": 0, "displaced": 0}
    assert len(await slot_ids(booking)) == 3
    assert (await booking.client.get(f"/api/v1/appointments/{appointment['id']}", headers=AGENT)).json()["status"] == "booked"
    # Putting the morning back does not recreate its past slots either.
    restored = await booking.put_rota(A, rota([session("am", TOMORROW, "09:00", "10:00")]))
    assert restored.json() == {"created": 3, "removed": 0, "unchanged": 0, "displaced": 0}


async def test_a_bad_rota_is_refused_whole_naming_each_bad_session(booking: Booking):
    await booking.seed_practice(A)
    ok = session("ok", TOMORROW, "08:00", "09:00")
    body = rota([
        ok,
        session("backwards", TOMORROW, "12:00", "11:00"),
        session("ragged", TOMORROW, "13:00", "13:25"),
        session("stranger", TOMORROW, "09:00", "10:00", clinician="NOBODY"),
        session("kind", TOMORROW, "09:00", "10:00", clinician="C2", slot_type="NOPE"),
        session("clash", TOMORROW, "08:30", "09:30"),
        session("late", TOMORROW + timedelta(days=14), "09:00", "10:00"),
        {**ok, "start": f"{TOMORROW}T14:00:00", "end": f"{TOMORROW}T15:00:00"},
    ])
    refused = await booking.put_rota(A, body)
    assert refused.status_code == 422 and refused.json()["code"] == "invalid_rota"
    errors = refused.json()["errors"]
    assert [(e["index"], e["session_id"]) for e in errors] == [
        (1, "backwards"), (2, "ragged"), (3, "stranger"), (4, "kind"), (5, "clash"), (6, "late"), (7, "ok")]
    reasons = {e["session_id"] + str(e["index"]): e["reason"] for e in errors}
    assert "after start" in reasons["backwards1"] and "whole number of 10-minute slots" in reasons["ragged2"]
    assert "clinician 'NOBODY'" in reasons["stranger3"] and "slot type 'NOPE'" in reasons["kind4"]
    assert "overlaps session 'ok'" in reasons["clash5"] and "outside the rota's window" in reasons["late6"]
    assert "used twice" in reasons["ok7"]
    assert await slot_ids(booking) == set() and await booking.events("booking.slots.published.v1") == []

    too_long = await booking.put_rota(A, rota([ok], days=12 * 7 + 1))
    assert too_long.status_code == 422 and too_long.json()["code"] == "invalid_window"
    backwards = await booking.put_rota(A, {"from": "2027-01-12", "to": "2027-01-12", "sessions": []})
    assert backwards.status_code == 422 and backwards.json()["code"] == "invalid_window"
    malformed = await booking.put_rota(A, {"from": "2027-01-12", "to": "x", "sessions": [{"session_id": "s"}]})
    assert malformed.status_code == 422 and malformed.json()["code"] == "validation_error"
    assert (await booking.put_rota(A, rota([ok], days=12 * 7))).status_code == 200


async def test_sessions_on_clock_change_days_keep_their_london_times(booking: Booking):
    await booking.seed_practice(A)
    for change_day, offset in ((date(2027, 3, 28), "+01:00"), (date(2027, 10, 31), "+00:00")):
        booking.clock.now = datetime.combine(change_day - timedelta(days=20), datetime.min.time(), timezone.utc)
        body = rota([session(f"am-{change_day}", change_day, "09:00", "12:00"),
                     # the same morning given as UTC with an offset, for another clinician: same local times
                     {**session(f"utc-{change_day}", change_day, "09:00", "12:00", clinician="C2"),
                      "start": datetime.combine(change_day, datetime.min.time(), timezone.utc).replace(
                          hour=8 if offset == "+01:00" else 9).isoformat(),
                      "end": datetime.combine(change_day, datetime.min.time(), timezone.utc).replace(
                          hour=11 if offset == "+01:00" else 12).isoformat()}],
                    start=change_day, days=1)
        result = await booking.put_rota(A, body)
        assert result.json()["created"] == 36, result.text
        found = await booking.slots(AGENT, practice=A, **{"from": change_day.isoformat(), "to": change_day.isoformat()})
        for clinician in ("C1", "C2"):
            starts = [s["start"] for s in found if s["clinician"]["id"] == clinician]
            assert starts[0] == f"{change_day}T09:00:00{offset}" and starts[-1] == f"{change_day}T11:50:00{offset}"
            assert len(starts) == 18
    gap = await booking.put_rota(A, rota([session("night", date(2027, 3, 28), "00:30", "02:30", minutes=30)],
                                         start=date(2027, 3, 28), days=1))
    assert gap.status_code == 422 and "does not exist" in gap.json()["errors"][0]["reason"]


def test_plan_session_is_deterministic_and_ids_follow_what_defines_a_slot():
    s = RotaSessionIn(session_id="s", clinician_id="C1", slot_type="ROUTINE", start=datetime(2027, 1, 12, 9),
                      end=datetime(2027, 1, 12, 10), slot_minutes=20)
    ids = [p.id for p in plan_session(A, s)]
    assert ids == [p.id for p in plan_session(A, s)] and len(set(ids)) == 3
    assert not set(ids) & {p.id for p in plan_session(B, s)}
    assert not set(ids) & {p.id for p in plan_session(A, s.model_copy(update={"clinician_id": "C2"}))}
