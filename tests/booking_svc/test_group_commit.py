"""Bookings that arrive together are committed together on PostgreSQL (services.groupcommit): a mixed burst gets
exactly the answers, rows, feed entries and events that booking one at a time gives, and a batch that fails is
booked request by request. SQLite (which books one at a time) and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from booking_svc.appointments import service as appointments
from booking_svc.holds import service as holds
from tests.booking_svc.conftest import TOMORROW, Booking, nhs
from tests.booking_svc.test_appointments import A, AGENT2, B, seed, slot_of
from tests.support.apps import AGENT, identity, practice
from tests.support.groupcommit import batch_sizes, fallbacks


async def free_on(booking: Booking, day: str) -> int:
    [(free,)] = await booking.sql(
        "SELECT count(*) FROM slots WHERE ods_code = :o AND status = 'free' AND CAST(start_at AS TEXT) LIKE :d",
        o=A, d=f"{day}%")
    return free


async def test_a_burst_of_bookings_gets_what_booking_one_at_a_time_gives(booking: Booking):
    await seed(booking)
    await booking.seed_practice(A, pcn="PCN-1", patients=[nhs(n) for n in range(1, 3)] + [nhs(n) for n in range(10, 40)])
    routine = [await slot_of(booking, "r1", n) for n in range(6)]
    shared, urgent = await slot_of(booking, "s1"), await slot_of(booking, "u1")
    held = (await booking.client.post("/api/v1/holds", json={"slot_id": routine[5]}, headers=AGENT)).json()
    held_elsewhere = await slot_of(booking, "s1", 1)
    assert (await booking.client.post("/api/v1/holds", json={"slot_id": held_elsewhere}, headers=AGENT)).status_code == 201
    sizes = batch_sizes(booking.app.state.bookings)
    fallen_back = fallbacks("bookings")

    def book(slot_id: str, patient: str, headers: dict = AGENT2, **extra: Any):  # noqa: ANN202
        return booking.client.post("/api/v1/appointments", headers=headers,
                                   json={"slot_id": slot_id, "nhs_number": patient, **extra})

    requests = {
        **{f"routine-{n}": book(routine[n], nhs(10 + n), identity("agent", f"a{n}")) for n in range(4)},
        # Four agents race for one slot: one wins.
        **{f"race-{n}": book(routine[4], nhs(20 + n), identity("agent", f"r{n}")) for n in range(4)},
        "held-by-another": book(held_elsewhere, nhs(1)),
        "held-by-me": book(routine[5], nhs(31), AGENT, hold_id=held["hold_id"]),
        "pcn-partner-patient": book(shared, nhs(3)),  # registered at B: the shared slot's PCN path
        "no-such-slot": book("no-such-slot", nhs(32)),
        "embargoed": book(urgent, nhs(33)),
        "not-registered": book(routine[3], nhs(4)),
    }
    names = list(requests)
    responses: dict[str, httpx.Response] = dict(zip(names, await asyncio.gather(*requests.values()), strict=True))

    def answer(name: str) -> tuple[int, str | None]:
        r = responses[name]
        return r.status_code, (r.json().get("code") if r.status_code >= 400 else None)

    assert [answer(f"routine-{n}") for n in range(4)] == [(201, None)] * 4
    assert Counter(answer(f"race-{n}") for n in range(4)) == {(201, None): 1, (409, "slot_taken"): 3}
    assert answer("held-by-another") == (409, "slot_held")
    assert answer("held-by-me") == (201, None)
    assert answer("pcn-partner-patient") == (201, None)
    assert responses["pcn-partner-patient"].json()["registered_practice"] == B
    assert answer("no-such-slot") == (404, "slot_not_found")
    assert answer("embargoed") == (409, "embargoed")
    # routine[3] is taken by routine-3 or refused first as not registered: either way, not booked twice.
    assert answer("not-registered") in ((409, "not_registered"), (409, "slot_taken"))

    booked = [r.json() for r in responses.values() if r.status_code == 201]
    assert len(booked) == 7
    for r in responses.values():
        if r.status_code == 201:
            assert r.headers["etag"] == '"1"' and r.json()["status"] == "booked" and r.json()["version"] == 1
    assert await booking.sql("SELECT slot_id FROM appointments GROUP BY slot_id HAVING count(*) > 1") == []
    assert sorted(r[0] for r in await booking.sql("SELECT id FROM appointments")) == sorted(b["id"] for b in booked)
    stored = {r[0]: r[1:] for r in await booking.sql("SELECT id, booking_reference, slot_id, nhs_number FROM appointments")}
    assert all(stored[b["id"]] == (b["booking_reference"], b["slot_id"], b["nhs_number"]) for b in booked)
    # The practice's feed: each booking once, numbered 1, 2, 3... with no gap, with the answer's own view.
    feed = await booking.sql("SELECT seq, appointment_id FROM feed_entries WHERE ods_code = :o ORDER BY seq", o=A)
    assert [seq for seq, _ in feed] == list(range(1, 8))
    assert sorted(a for _, a in feed) == sorted(b["id"] for b in booked)
    items = (await booking.client.get(f"/api/v1/feed/{A}", headers=practice(A))).json()["items"]
    assert {i["appointment_id"]: i["appointment"] for i in items} == {b["id"]: b for b in booked}
    # One event per booking, its own request's, with the day's free count as of its commit.
    events = await booking.events("booking.appointment.booked.v1")
    assert sorted(e["data"]["appointment_id"] for e in events) == sorted(b["id"] for b in booked)
    day = TOMORROW.isoformat()
    counts = [e["data"]["free_slots_by_date"][day] for e in events if day in e["data"]["free_slots_by_date"]]
    assert min(counts) == await free_on(booking, day)  # nothing was freed: the last count is the smallest
    assert {e["data"]["actor"] for e in events} >= {"a0", "a1", "a2", "a3", "agent1", "agent2"}
    # Every batch committed as it was (none fell back to one at a time, which would hide a batch's mistakes).
    assert fallbacks("bookings") == fallen_back
    if booking.app.state.db.dialect == "postgresql":
        assert max(sizes) > 1, sizes  # some of them were committed together
    else:
        assert sizes == []  # SQLite: one at a time


@pytest.mark.parametrize("dialect", ["postgresql"])
async def test_a_batch_that_fails_is_booked_request_by_request(booking: Booking, monkeypatch: pytest.MonkeyPatch):
    await seed(booking)
    await booking.seed_practice(A, pcn="PCN-1", patients=[nhs(n) for n in range(10, 20)])
    routine = [await slot_of(booking, "r1", n) for n in range(5)]
    failures = {"left": 1}
    insert_with_entry_each = appointments.repository.insert_with_entry_each

    async def failing_once(batch: Any, rows: list) -> Any:
        if failures["left"]:
            failures["left"] -= 1
            raise RuntimeError("the database refused the batch")  # after the slots were claimed in it
        return await insert_with_entry_each(batch, rows)

    monkeypatch.setattr(appointments.repository, "insert_with_entry_each", failing_once)
    fallen_back = fallbacks("bookings")
    responses = await asyncio.gather(*(
        booking.client.post("/api/v1/appointments", headers=identity("agent", f"a{n}"),
                            json={"slot_id": routine[n], "nhs_number": nhs(10 + n)}) for n in range(5)))
    assert [r.status_code for r in responses] == [201] * 5, [r.text for r in responses]
    assert fallbacks("bookings") == fallen_back + 1
    assert failures["left"] == 0
    # The failed batch left nothing behind: each slot booked once, each booking with one event and one entry.
    assert sorted(r[0] for r in await booking.sql("SELECT slot_id FROM appointments")) == sorted(routine)
    assert await booking.sql("SELECT count(*) FROM slots WHERE status = 'booked'") == [(5,)]
    assert len(await booking.events("booking.appointment.booked.v1")) == 5
    assert [r[0] for r in await booking.sql("SELECT seq FROM feed_entries ORDER BY seq")] == [1, 2, 3, 4, 5]


async def test_each_bookings_event_counts_its_days_free_slots_as_of_its_commit(booking: Booking):
    await seed(booking)
    await booking.seed_practice(A, pcn="PCN-1", patients=[nhs(n) for n in range(10, 30)])
    slots = [await slot_of(booking, "r1", n) for n in range(6)] + [await slot_of(booking, "s1", n) for n in range(6)]
    day = TOMORROW.isoformat()
    before = await free_on(booking, day)
    responses = await asyncio.gather(*(
        booking.client.post("/api/v1/appointments", headers=identity("agent", f"a{n}"),
                            json={"slot_id": slot_id, "nhs_number": nhs(10 + n)}) for n, slot_id in enumerate(slots)))
    assert [r.status_code for r in responses] == [201] * 12
    counts = [e["data"]["free_slots_by_date"][day] for e in await booking.events("booking.appointment.booked.v1")]
    # In commit order: never more than before minus the bookings committed so far, never rising, and the last is
    # the day's count now.
    assert len(counts) == 12 and counts == sorted(counts, reverse=True)
    assert all(count <= before - (k + 1) for k, count in enumerate(counts))
    assert counts[-1] == await free_on(booking, day) == before - 12


@pytest.mark.parametrize("dialect", ["postgresql"])
async def test_a_slot_taken_while_its_batch_runs_is_refused_not_booked_twice(booking: Booking,
                                                                           monkeypatch: pytest.MonkeyPatch):
    """Between a batch's read of its slots and its claims, another transaction (another replica) books one."""
    await seed(booking)
    await booking.seed_practice(A, pcn="PCN-1", patients=[nhs(n) for n in range(10, 20)])
    routine = [await slot_of(booking, "r1", n) for n in range(4)]
    claim_each = appointments.slots.claim_each

    async def taken_meanwhile(batch: Any, claims: list) -> dict[str, int]:
        if any(c["p_slot_id"] == routine[2] for c in claims):
            async with booking.app.state.db.transaction() as other:
                await other.execute(text("UPDATE slots SET status = 'booked' WHERE id = :s"), {"s": routine[2]})
        return await claim_each(batch, claims)

    monkeypatch.setattr(appointments.slots, "claim_each", taken_meanwhile)
    responses = await asyncio.gather(*(
        booking.client.post("/api/v1/appointments", headers=identity("agent", f"a{n}"),
                            json={"slot_id": routine[n], "nhs_number": nhs(10 + n)}) for n in range(4)))
    assert [r.status_code for r in responses] == [201, 201, 409, 201]
    assert responses[2].json()["code"] == "slot_taken"
    assert sorted(r[0] for r in await booking.sql("SELECT slot_id FROM appointments")) == sorted(
        routine[n] for n in (0, 1, 3))
    assert len(await booking.events("booking.appointment.booked.v1")) == 3


@pytest.mark.parametrize("dialect", ["postgresql"])
async def test_a_days_count_is_right_when_the_days_last_claim_in_a_batch_loses(booking: Booking,
                                                                                monkeypatch: pytest.MonkeyPatch):
    """A batch counts a day's free slots at its last claim that day (in slot-id order); when that claim loses its
    race, the day is counted after the batch's claims instead, and the events still carry the day's count."""
    await seed(booking)
    await booking.seed_practice(A, pcn="PCN-1", patients=[nhs(n) for n in range(10, 20)])
    routine = sorted([await slot_of(booking, "r1", n) for n in range(6)])
    last = routine[-1]  # the day's last claim in any batch that has it
    claim_each = appointments.slots.claim_each
    recounts = {"n": 0}
    free_in_day = appointments.slots._FREE_IN_DAY_EACH
    count_each = free_in_day.fetch_each

    async def taken_meanwhile(batch: Any, claims: list) -> dict[str, int | None]:
        if any(c["p_slot_id"] == last for c in claims) and len(claims) > 1:
            async with booking.app.state.db.transaction() as other:
                await other.execute(text("UPDATE slots SET status = 'booked' WHERE id = :s"), {"s": last})
        return await claim_each(batch, claims)

    async def counting(*args: Any) -> Any:
        recounts["n"] += 1
        return await count_each(*args)

    monkeypatch.setattr(appointments.slots, "claim_each", taken_meanwhile)
    monkeypatch.setattr(free_in_day, "fetch_each", counting)
    day = TOMORROW.isoformat()
    responses = await asyncio.gather(*(
        booking.client.post("/api/v1/appointments", headers=identity("agent", f"a{n}"),
                            json={"slot_id": slot_id, "nhs_number": nhs(10 + n)}) for n, slot_id in enumerate(routine)))
    statuses = {slot_id: r.status_code for slot_id, r in zip(routine, responses, strict=True)}
    if recounts["n"] == 0:
        pytest.fail(f"the last slot was never in a batch with others: {statuses}")
    assert statuses == {**{slot_id: 201 for slot_id in routine[:-1]}, last: 409}
    events = await booking.events("booking.appointment.booked.v1")
    assert len(events) == 5
    # The slot taken meanwhile and the five booked: the last event's count is the day's now, none is missing.
    assert [e["data"]["free_slots_by_date"][day] for e in events][-1] == await free_on(booking, day)


async def test_a_burst_of_holds_gets_what_holding_one_at_a_time_gives(booking: Booking,
                                                                      monkeypatch: pytest.MonkeyPatch):
    await seed(booking)
    routine = [await slot_of(booking, "r1", n) for n in range(6)]
    urgent = await slot_of(booking, "u1")
    sizes = batch_sizes(booking.app.state.holds)
    hold_each = holds.slots.hold_each

    async def taken_meanwhile(batch: Any, params: list) -> dict[str, int]:
        if any(p["p_slot_id"] == routine[5] for p in params):  # between the batch's read and its holds
            async with booking.app.state.db.transaction() as other:
                await other.execute(text("UPDATE slots SET status = 'booked' WHERE id = :s"), {"s": routine[5]})
        return await hold_each(batch, params)

    monkeypatch.setattr(holds.slots, "hold_each", taken_meanwhile)
    fallen_back = fallbacks("holds")
    day = TOMORROW.isoformat()
    before = await free_on(booking, day)

    def hold(slot_id: str, agent: str):  # noqa: ANN202
        return booking.client.post("/api/v1/holds", json={"slot_id": slot_id}, headers=identity("agent", agent))

    requests = {**{f"hold-{n}": hold(routine[n], f"a{n}") for n in range(3)},
                **{f"race-{n}": hold(routine[3], f"r{n}") for n in range(4)},
                "taken-meanwhile": hold(routine[5], "m"), "embargoed": hold(urgent, "e"),
                "no-such-slot": hold("no-such-slot", "x")}
    responses = dict(zip(requests, await asyncio.gather(*requests.values()), strict=True))

    def answer(name: str) -> tuple[int, str | None]:
        r = responses[name]
        return r.status_code, (r.json().get("code") if r.status_code >= 400 else None)

    assert [answer(f"hold-{n}") for n in range(3)] == [(201, None)] * 3
    assert Counter(answer(f"race-{n}") for n in range(4)) == {(201, None): 1, (409, "slot_held"): 3}
    batching = booking.app.state.db.dialect == "postgresql"  # SQLite holds one at a time: nothing runs meanwhile
    assert (answer("taken-meanwhile"), answer("embargoed"), answer("no-such-slot")) == (
        (409, "slot_taken") if batching else (201, None), (409, "embargoed"), (404, "slot_not_found"))
    won = [r.json() for r in responses.values() if r.status_code == 201]
    for hold_body in won:
        assert hold_body["expires_at"] == "2027-01-11T09:02:00+00:00" and hold_body["expires_in_seconds"] == 120
    held = dict(await booking.sql("SELECT id, hold_id FROM slots WHERE status = 'held'"))
    assert held == {h["slot_id"]: h["hold_id"] for h in won}
    # One availability event per hold, naming its slot, with the day's count as of its commit.
    events = [e["data"] for e in await booking.events("booking.availability.changed.v1") if e["data"]["taken_slot_ids"]
              and e["data"]["taken_slot_ids"][0] in held]
    assert sorted(e["taken_slot_ids"][0] for e in events) == sorted(held)
    counts = [e["free_slots_by_date"][day] for e in events]
    assert counts == sorted(counts, reverse=True)
    # Five slots gone either way: four held, and the fifth booked meanwhile (PostgreSQL) or held (SQLite).
    assert counts[-1] == await free_on(booking, day) == before - 5
    # The holds work: each holder books its own slot with its hold, and nobody else can.
    for n in range(3):
        body = responses[f"hold-{n}"].json()
        taken = await booking.client.post("/api/v1/appointments", headers=identity("agent", "intruder"), json={
            "slot_id": body["slot_id"], "nhs_number": nhs(1)})
        assert taken.status_code == 409 and taken.json()["code"] == "slot_held"
        mine = await booking.client.post("/api/v1/appointments", headers=identity("agent", f"a{n}"), json={
            "slot_id": body["slot_id"], "hold_id": body["hold_id"], "nhs_number": nhs(1 + n % 2)})
        assert mine.status_code == 201, mine.text
    assert fallbacks("holds") == fallen_back
    if batching:
        assert max(sizes) > 1, sizes
    else:
        assert sizes == []
