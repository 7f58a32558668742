"""GET /api/v1/feed/{ods}: every booking-side change for the practice, in order, with a stable cursor."""

from __future__ import annotations

from tests.booking_svc.conftest import TOMORROW, Booking, nhs, rota, session
from tests.support.apps import ADMIN, AGENT, SUPERVISOR, practice

A, B = "A81001", "A81002"


async def test_the_feed_lists_changes_in_order_and_resumes_from_a_cursor(booking: Booking):
    await booking.seed_practice(A, patients=[nhs(1), nhs(2), nhs(3)])
    await booking.seed_practice(B, patients=[nhs(4)])
    await booking.put_rota(A, rota([session("am", TOMORROW, "09:00", "10:00")]))
    await booking.put_rota(B, rota([session("am", TOMORROW, "09:00", "10:00")]))
    a_slots = [s["id"] for s in await booking.slots(AGENT, practice=A)]
    b_slot = (await booking.slots(AGENT, practice=B))[0]["id"]

    async def book(slot_id: str, patient: str) -> dict:
        r = await booking.client.post("/api/v1/appointments", headers=AGENT, json={"slot_id": slot_id, "nhs_number": patient})
        assert r.status_code == 201
        return r.json()

    first = await book(a_slots[0], nhs(1))
    await book(b_slot, nhs(4))  # another practice's change is not in A's feed
    second = await book(a_slots[1], nhs(2))
    await booking.client.post(f"/api/v1/appointments/{first['id']}/cancel", json={}, headers=AGENT)
    moved = (await booking.client.post(f"/api/v1/appointments/{second['id']}/reschedule",
                                       json={"slot_id": a_slots[2]}, headers=AGENT)).json()
    await booking.client.post(f"/api/v1/appointments/{moved['id']}/status", json={"status": "arrived"},
                              headers=practice(A))

    whole = (await booking.client.get(f"/api/v1/feed/{A}", headers=practice(A))).json()
    assert [(i["seq"], i["kind"], i["appointment_id"]) for i in whole["items"]] == [
        (1, "booked", first["id"]), (2, "booked", second["id"]), (3, "cancelled", first["id"]),
        (4, "rescheduled", moved["id"]), (5, "status_changed", moved["id"])]
    assert whole["next_cursor"] is None and whole["last_cursor"] == "5"
    assert whole["items"][2]["appointment"]["status"] == "cancelled"
    assert whole["items"][0]["occurred_at"].endswith("+00:00") and whole["items"][0]["appointment"]["nhs_number"] == nhs(1)

    page = (await booking.client.get(f"/api/v1/feed/{A}", params={"limit": 2}, headers=practice(A))).json()
    assert [i["seq"] for i in page["items"]] == [1, 2] and page["next_cursor"] == "2"
    rest = (await booking.client.get(f"/api/v1/feed/{A}", params={"after": page["next_cursor"]}, headers=ADMIN)).json()
    assert [i["seq"] for i in rest["items"]] == [3, 4, 5]
    # A cursor stays valid: later changes appear after it, earlier ones never again.
    await booking.client.post(f"/api/v1/appointments/{moved['id']}/status", json={"status": "completed"},
                              headers=practice(A))
    later = (await booking.client.get(f"/api/v1/feed/{A}", params={"after": "5"}, headers=practice(A))).json()
    assert [(i["seq"], i["kind"]) for i in later["items"]] == [(6, "status_changed")]
    empty = (await booking.client.get(f"/api/v1/feed/{A}", params={"after": "6"}, headers=practice(A))).json()
    assert empty == {"items": [], "next_cursor": None, "last_cursor": "6"}
    assert [i["kind"] for i in (await booking.client.get(f"/api/v1/feed/{B}", headers=practice(B))).json()["items"]] == ["booked"]

    audit = (await booking.events("booking.audit.recorded.v1"))[-1]["data"]
    assert audit["action"] == "feed.read" and audit["on_behalf_of"] == B and audit["actor"] == f"key-{B}"

    assert (await booking.client.get(f"/api/v1/feed/{A}", headers=practice(B))).status_code == 403
    assert (await booking.client.get(f"/api/v1/feed/{A}", headers=AGENT)).status_code == 403
    assert (await booking.client.get(f"/api/v1/feed/{A}", headers=SUPERVISOR)).status_code == 403
    bad = await booking.client.get(f"/api/v1/feed/{A}", params={"after": "x1"}, headers=practice(A))
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_cursor"
