"""Call lifecycle: pick-up, one open call per agent, wrap-up with a disposition and the handle time."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import update

from agent_desk_svc.calls.models import Call
from services.events import Envelope
from services.timeutil import utcnow
from tests.agent_desk_svc.conftest import Desk, staff
from tests.support.apps import wait_until

ALICE, BOB, SUE = staff("alice"), staff("bob"), staff("sue", "supervisor")
NHS = "9434765919"


async def desk_events(desk: Desk, subject_prefix: str) -> list[dict]:
    js = desk.app.state.messaging.js
    info = await js.stream_info("DESK")
    found = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        msg = await js.get_msg("DESK", seq)
        if msg.subject.startswith(subject_prefix):
            found.append(Envelope.model_validate_json(msg.data).data)
    return found


async def state_of(desk: Desk, username: str) -> str:
    return (await desk.client.get("/api/v1/agents/me", headers=staff(username))).json()["state"]


async def test_call_lifecycle_and_handle_time(desk: Desk) -> None:
    await desk.create_agent("alice")
    await desk.create_agent("bob")
    offline = await desk.client.post("/api/v1/calls", headers=ALICE, json={})
    assert offline.status_code == 409 and offline.json()["code"] == "agent_not_available"
    await desk.client.put("/api/v1/agents/alice/state", headers=ALICE, json={"state": "available"})

    bad = await desk.client.post("/api/v1/calls", headers=ALICE, json={"nhs_number": "9434765918"})
    assert bad.status_code == 422 and "9434765918" not in bad.text
    started = await desk.client.post("/api/v1/calls", headers=ALICE,
                                     json={"nhs_number": "943 476 5919", "practice": "a81001"})
    assert started.status_code == 201, started.text
    assert started.json()["id"].isalpha()  # no digits for the logs' NHS-number mask to rewrite (services.ids)
    call = started.json()
    assert call["nhs_number"] == NHS and call["practice"] == "A81001" and call["agent"] == "alice"
    assert call["open"] is True and call["closed_at"] is None and call["handle_seconds"] is None
    assert await state_of(desk, "alice") == "on_call"

    again = await desk.client.post("/api/v1/calls", headers=ALICE, json={})
    assert again.status_code == 409 and again.json()["code"] == "call_already_open"
    on_break = await desk.client.put("/api/v1/agents/alice/state", headers=ALICE, json={"state": "break"})
    assert on_break.status_code == 409 and on_break.json()["code"] == "call_open"
    disabled = await desk.client.patch("/api/v1/agents/alice", headers=SUE, json={"active": False})
    assert disabled.status_code == 409 and disabled.json()["code"] == "call_open"

    # The call lasted three minutes and a bit.
    async with desk.app.state.db.transaction() as session:
        await session.execute(update(Call).where(Call.id == call["id"])
                              .values(started_at=utcnow() - timedelta(minutes=3, seconds=5)))
    not_hers = await desk.client.patch(f"/api/v1/calls/{call['id']}", headers=BOB, json={"disposition": "booked"})
    assert not_hers.status_code == 403
    unknown = await desk.client.patch(f"/api/v1/calls/{call['id']}", headers=ALICE, json={"disposition": "sold"})
    assert unknown.status_code == 422
    closed = await desk.client.patch(f"/api/v1/calls/{call['id']}", headers=ALICE, json={
        "disposition": "booked", "appointment_id": "appt-1", "notes": "booked a routine GP slot"})
    assert closed.status_code == 200, closed.text
    wrapped = closed.json()
    assert wrapped["open"] is False and wrapped["disposition"] == "booked" and wrapped["appointment_id"] == "appt-1"
    elapsed = (datetime.fromisoformat(wrapped["closed_at"]) - datetime.fromisoformat(wrapped["started_at"]))
    assert wrapped["handle_seconds"] == round(elapsed.total_seconds(), 3)
    assert 180 <= wrapped["handle_seconds"] < 240
    assert await state_of(desk, "alice") == "wrap_up"
    twice = await desk.client.patch(f"/api/v1/calls/{call['id']}", headers=ALICE, json={"disposition": "booked"})
    assert twice.status_code == 409 and twice.json()["code"] == "call_closed"
    missing = await desk.client.patch("/api/v1/calls/nope", headers=ALICE, json={"disposition": "booked"})
    assert missing.status_code == 404

    # Straight from wrap-up into the next call; a supervisor may close someone else's call.
    second = (await desk.client.post("/api/v1/calls", headers=ALICE, json={})).json()
    closed_by_sue = await desk.client.patch(f"/api/v1/calls/{second['id']}", headers=SUE,
                                            json={"disposition": "abandoned"})
    assert closed_by_sue.status_code == 200
    await desk.client.put("/api/v1/agents/bob/state", headers=BOB, json={"state": "available"})
    bobs = (await desk.client.post("/api/v1/calls", headers=BOB, json={"practice": "B82002"})).json()

    own = await desk.client.get("/api/v1/calls", headers=ALICE)
    assert [c["id"] for c in own.json()["items"]] == [second["id"], call["id"]]  # newest first
    assert (await desk.client.get("/api/v1/calls", headers=ALICE, params={"agent": "bob"})).status_code == 403
    everyone = await desk.client.get("/api/v1/calls", headers=SUE)
    assert {c["id"] for c in everyone.json()["items"]} == {call["id"], second["id"], bobs["id"]}
    open_now = await desk.client.get("/api/v1/calls", headers=SUE, params={"open": "true"})
    assert [c["id"] for c in open_now.json()["items"]] == [bobs["id"]]
    page = await desk.client.get("/api/v1/calls", headers=SUE, params={"limit": 2})
    rest = await desk.client.get("/api/v1/calls", headers=SUE, params={"cursor": page.json()["next_cursor"]})
    assert len(page.json()["items"]) == 2 and [c["id"] for c in rest.json()["items"]] == [call["id"]]

    # CallStarted and CallWrappedUp went out through the outbox.
    async def published() -> list[dict]:
        found = await desk_events(desk, "desk.call.")
        return found if len(found) == 5 else []

    events = await wait_until(published)
    wrapped_up = [e for e in events if "disposition" in e]
    assert [(e["call_id"], e["disposition"]) for e in wrapped_up] == [(call["id"], "booked"),
                                                                     (second["id"], "abandoned")]
    assert wrapped_up[0]["handle_seconds"] == wrapped["handle_seconds"]
    assert "nhs_number" not in events[0]  # no patient identifier on the bus for calls
    assert NHS not in desk.logs.getvalue()
