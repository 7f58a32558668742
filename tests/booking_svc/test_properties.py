"""Hypothesis: slot generation across the 2026 and 2027 clock changes, rota replacement idempotence, hold expiry."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

import pytest
from booking_svc.rotas.schemas import RotaSessionIn
from booking_svc.rotas.service import RotaError, plan_session
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.timeutil import LONDON
from tests.booking_svc.conftest import START, TOMORROW, Booking, nhs, rota, session
from tests.support.apps import AGENT, identity

CLOCK_CHANGES = [date(2026, 3, 29), date(2026, 10, 25), date(2027, 3, 28), date(2027, 10, 31)]
DAYS = [d + timedelta(days=k) for d in CLOCK_CHANGES for k in (-1, 0, 1)]
STEPS = [5, 10, 15, 20, 30, 60]
A = "A81001"
IN_FIXTURE = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@given(day=st.sampled_from(DAYS), hour=st.integers(3, 20), minute=st.sampled_from([0, 15, 30, 45]),
       step=st.sampled_from(STEPS), count=st.integers(1, 36))
@settings(max_examples=400, deadline=None)
def test_slots_keep_their_london_wall_times_across_clock_changes(day, hour, minute, step, count):
    wall_start = datetime.combine(day, time(hour, minute))
    wall_end = wall_start + timedelta(minutes=step * count)
    if wall_end.date() != day:
        return
    planned = plan_session(A, RotaSessionIn(session_id="s", clinician_id="C1", slot_type="ROUTINE",
                                            start=wall_start, end=wall_end, slot_minutes=step))
    assert len(planned) == count
    for k, slot in enumerate(planned):
        local = slot.start.astimezone(LONDON)
        assert local.replace(tzinfo=None) == wall_start + timedelta(minutes=step * k)
        assert slot.start.tzinfo == timezone.utc and slot.end - slot.start == timedelta(minutes=step)
    assert len({p.id for p in planned}) == count


@given(day=st.sampled_from(CLOCK_CHANGES), start_hour=st.integers(0, 1), hours=st.integers(1, 3),
       step=st.sampled_from(STEPS))
@settings(max_examples=100, deadline=None)
def test_a_slot_boundary_in_the_missing_or_repeated_hour_is_refused(day, start_hour, hours, step):
    wall_start = datetime.combine(day, time(start_hour))
    wall_end = wall_start + timedelta(hours=hours)
    boundaries = [wall_start + timedelta(minutes=step * k) for k in range(hours * 60 // step + 1)]
    touches_change_hour = any(b.hour == 1 for b in boundaries)
    body = RotaSessionIn(session_id="s", clinician_id="C1", slot_type="ROUTINE", start=wall_start, end=wall_end,
                         slot_minutes=step)
    if touches_change_hour:
        with pytest.raises(RotaError, match="clocks go"):
            plan_session(A, body)
    else:
        assert len(plan_session(A, body)) == len(boundaries) - 1


POOL = [
    session("c1-am", TOMORROW, "09:00", "10:00"),
    session("c1-pm", TOMORROW, "14:00", "15:00", minutes=15),
    session("c2-am", TOMORROW, "09:00", "11:00", clinician="C2", minutes=20),
    session("c2-next", TOMORROW + timedelta(days=1), "09:00", "10:00", clinician="C2"),
    session("n1-am", TOMORROW, "08:30", "09:30", clinician="N1", slot_type="INTERNAL", minutes=30),
    session("n1-next", TOMORROW + timedelta(days=2), "16:00", "17:00", clinician="N1", slot_type="SHARED"),
]


def expected_ids(sessions: list[dict]) -> set[str]:
    return {p.id for s in sessions for p in plan_session(A, RotaSessionIn(**s))}


@given(first=st.sets(st.sampled_from(range(len(POOL)))), second=st.sets(st.sampled_from(range(len(POOL)))))
@IN_FIXTURE
async def test_replacing_a_rota_is_idempotent_and_ends_where_the_body_says(booking: Booking, first, second):
    if not booking.versions:
        await booking.seed_practice(A)
    before, after = [POOL[i] for i in sorted(first)], [POOL[i] for i in sorted(second)]
    await booking.put_rota(A, rota(before))
    repeat = (await booking.put_rota(A, rota(before))).json()
    assert repeat == {"created": 0, "removed": 0, "unchanged": len(expected_ids(before)), "displaced": 0}

    changed = (await booking.put_rota(A, rota(after))).json()
    old, new = expected_ids(before), expected_ids(after)
    assert changed == {"created": len(new - old), "removed": len(old - new), "unchanged": len(old & new),
                       "displaced": 0}
    assert {r[0] for r in await booking.sql("SELECT id FROM slots")} == new
    assert (await booking.put_rota(A, rota(after))).json()["unchanged"] == len(new)


@given(hold_seconds=st.integers(1, 900), elapsed=st.integers(0, 1800))
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
async def test_a_hold_counts_only_until_it_expires(booking: Booking, hold_seconds, elapsed):
    if not booking.versions:
        await booking.seed_practice(A, patients=[nhs(1), nhs(2)])
        await booking.put_rota(A, rota([session("day", TOMORROW, "08:00", "18:00", minutes=5)]))
    booking.clock.now = START
    booking.app.state.settings.hold_seconds = hold_seconds
    used = {r[0] for r in await booking.sql("SELECT id FROM slots WHERE status <> 'free'")}
    slot_id = next(s for s in await booking.sql("SELECT id FROM slots ORDER BY start_at") if s[0] not in used)[0]
    other = identity("agent", "agent2")

    hold = (await booking.client.post("/api/v1/holds", json={"slot_id": slot_id}, headers=AGENT)).json()
    booking.clock.advance(seconds=elapsed)
    expired = elapsed >= hold_seconds
    offered = slot_id in {s["id"] for s in await booking.slots(AGENT, practice=A, to="2027-01-12")}
    assert offered == expired
    taken = await booking.client.post("/api/v1/appointments", headers=other,
                                      json={"slot_id": slot_id, "nhs_number": nhs(2)})
    assert taken.status_code == (201 if expired else 409)
    mine = await booking.client.post("/api/v1/appointments", headers=AGENT,
                                     json={"slot_id": slot_id, "hold_id": hold["hold_id"], "nhs_number": nhs(1)})
    assert mine.status_code == (409 if expired else 201)
