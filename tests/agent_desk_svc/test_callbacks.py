"""Callback tasks: raised by staff or by a practice for its own patients, worked by agents, and raised
automatically when a rota change displaces a booked appointment."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from services.contracts.booking import AppointmentDisplaced
from services.timeutil import LONDON, utcnow
from tests.agent_desk_svc.conftest import Desk, staff
from tests.agent_desk_svc.test_calls import desk_events
from tests.support.apps import practice, wait_until

ALICE, BOB, SUE = staff("alice"), staff("bob"), staff("sue", "supervisor")
NHS, OTHER_NHS = "9434765919", "4010232137"


async def test_callbacks_are_raised_and_worked(desk: Desk) -> None:
    past_due = (utcnow() - timedelta(hours=1)).astimezone(LONDON).replace(tzinfo=None).isoformat()  # London, no offset
    by_staff = await desk.client.post("/api/v1/callbacks", headers=ALICE, json={
        "ods_code": "a81001", "nhs_number": "943 476 5919", "reason": "Ring back with a blood test slot",
        "due_by": past_due})
    assert by_staff.status_code == 201, by_staff.text
    overdue_task = by_staff.json()
    assert overdue_task["ods_code"] == "A81001" and overdue_task["nhs_number"] == NHS
    assert overdue_task["source"] == "staff" and overdue_task["status"] == "open" and overdue_task["overdue"] is True
    assert datetime.fromisoformat(overdue_task["due_by"]).utcoffset() is not None

    by_practice = await desk.client.post("/api/v1/callbacks", headers=practice("A81001"), json={
        "ods_code": "A81001", "nhs_number": OTHER_NHS, "reason": "Results: book a GP review",
        "due_by": (utcnow() + timedelta(days=2)).isoformat()})
    assert by_practice.status_code == 201
    task = by_practice.json()
    assert task["source"] == "practice" and task["created_by"] == "key-A81001" and task["overdue"] is False
    other = await desk.client.post("/api/v1/callbacks", headers=practice("A81001"), json={
        "ods_code": "B82002", "nhs_number": OTHER_NHS, "reason": "not yours"})
    assert other.status_code == 403 and other.json()["code"] == "other_practice"
    invalid = await desk.client.post("/api/v1/callbacks", headers=ALICE, json={
        "ods_code": "A81001", "nhs_number": "1234567890", "reason": "x"})
    assert invalid.status_code == 422
    assert (await desk.client.get("/api/v1/callbacks", headers=practice("A81001"))).status_code == 403

    listing = await desk.client.get("/api/v1/callbacks", headers=ALICE, params={"status": "open"})
    assert [t["id"] for t in listing.json()["items"]] == [overdue_task["id"], task["id"]]  # oldest first
    overdue = await desk.client.get("/api/v1/callbacks", headers=ALICE, params={"overdue": "true"})
    assert [t["id"] for t in overdue.json()["items"]] == [overdue_task["id"]]

    url = f"/api/v1/callbacks/{task['id']}"
    claimed = await desk.client.patch(url, headers=ALICE, json={"action": "claim"})
    assert claimed.json()["status"] == "claimed" and claimed.json()["claimed_by"] == "alice"
    for body in ({"action": "claim"}, {"action": "attempt", "note": "no answer"}, {"action": "release"},
                 {"action": "complete", "outcome": "booked"}):
        refused = await desk.client.patch(url, headers=BOB, json=body)
        assert refused.status_code == 409 and refused.json()["code"] == "already_claimed", body
    tried = await desk.client.patch(url, headers=ALICE, json={"action": "attempt", "note": "no answer, left voicemail"})
    assert tried.json()["attempts"] == 1 and tried.json()["attempt_log"][0]["by"] == "alice"
    released = await desk.client.patch(url, headers=ALICE, json={"action": "release"})
    assert released.json()["status"] == "open" and released.json()["claimed_by"] is None
    # Whoever rings the patient next has the task.
    tried = await desk.client.patch(url, headers=BOB, json={"action": "attempt", "note": "engaged"})
    assert tried.json()["status"] == "claimed" and tried.json()["claimed_by"] == "bob" and tried.json()["attempts"] == 2
    assert (await desk.client.patch(url, headers=SUE, json={"action": "release"})).json()["status"] == "open"
    await desk.client.patch(url, headers=BOB, json={"action": "claim"})
    done = await desk.client.patch(url, headers=BOB, json={"action": "complete", "outcome": "booked GP review"})
    assert done.status_code == 200
    assert done.json()["status"] == "completed" and done.json()["outcome"] == "booked GP review"
    again = await desk.client.patch(url, headers=BOB, json={"action": "complete", "outcome": "x"})
    assert again.status_code == 409 and again.json()["code"] == "callback_completed"
    assert (await desk.client.patch(url, headers=BOB, json={"action": "snooze"})).status_code == 422
    assert (await desk.client.patch("/api/v1/callbacks/nope", headers=BOB, json={"action": "claim"})).status_code == 404
    detail = (await desk.client.get(url, headers=SUE)).json()
    assert [a["note"] for a in detail["attempt_log"]] == ["no answer, left voicemail", "engaged"]

    completed = await desk.client.get("/api/v1/callbacks", headers=ALICE, params={"status": "completed"})
    assert [t["id"] for t in completed.json()["items"]] == [task["id"]]

    async def published() -> list[dict]:
        found = await desk_events(desk, "desk.callback.")
        return found if len(found) == 3 else []

    events = await wait_until(published)
    assert [e["callback_id"] for e in events] == [overdue_task["id"], task["id"], task["id"]]
    assert events[2]["outcome"] == "booked GP review"
    assert NHS not in desk.logs.getvalue() and OTHER_NHS not in desk.logs.getvalue()


def displaced(appointment_id: str, slot_start: datetime) -> AppointmentDisplaced:
    return AppointmentDisplaced(
        appointment_id=appointment_id, ods_code="A81001", slot_id="slot-1", nhs_number=NHS, slot_start=slot_start,
        slot_end=slot_start + timedelta(minutes=10), clinician_id="c1", slot_type="routine", channel="in_person",
        status="displaced", version=2, actor="key-A81001", actor_role="practice")


async def test_a_displaced_appointment_becomes_an_open_callback(desk: Desk) -> None:
    slot_start = datetime(2031, 7, 1, 8, 30, tzinfo=timezone.utc)  # 09:30 in London (summer time)
    envelope = await desk.publish(displaced("appt-9", slot_start), subject_key="A81001")
    await desk.republish(envelope, msg_id="again")

    async def open_tasks() -> list[dict]:
        if not await desk.drained("BOOKING"):
            return []
        return (await desk.client.get("/api/v1/callbacks", headers=ALICE, params={"status": "open"})).json()["items"]

    tasks = await wait_until(open_tasks)
    assert len(tasks) == 1  # the redelivered event did not raise a second task
    task = tasks[0]
    assert task["source"] == "displaced" and task["appointment_id"] == "appt-9" and task["nhs_number"] == NHS
    assert "Tue 01 Jul 2031 at 09:30" in task["reason"]
    assert datetime.fromisoformat(task["due_by"]) == slot_start
    assert NHS not in task["reason"]
