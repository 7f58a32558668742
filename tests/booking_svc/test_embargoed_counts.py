"""Searches read the counts of slots under embargo from memory (booking_svc.slots.repository.EmbargoedCounts): once
while fresh, again at once after this replica replaces a rota or applies a rules change, and within the time allowed
after anything else changed them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text

from booking_svc.slots import repository
from booking_svc.slots.repository import EmbargoedCounts
from services.contracts.registry import SlotTypesReplaced
from tests.booking_svc.conftest import SLOT_TYPES, TOMORROW, Booking, rota, session
from tests.booking_svc.test_practice_rules import MonotonicClock
from tests.support.apps import AGENT

A, B = "A81001", "A81002"


@pytest.fixture
def count_reads(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The practices each read of the counts from the database asked for (the real query still runs)."""
    reads: list[list[str]] = []
    real = repository.embargoed

    async def counted(session, ranges, **kwargs):
        reads.append(sorted(ods for ods, _code, _lo, _hi in ranges))
        return await real(session, ranges, **kwargs)

    monkeypatch.setattr(repository, "embargoed", counted)
    return reads


def urgent_rota(slots_from: str = "09:00", slots_to: str = "10:00") -> dict:
    return rota([session("routine", TOMORROW, "09:00", "10:00"),
                 session("urgent-tomorrow", TOMORROW, slots_from, slots_to, clinician="C2", slot_type="URGENT")])


async def seeded(booking: Booking) -> MonotonicClock:
    for ods in (A, B):
        await booking.seed_practice(ods)
        assert (await booking.put_rota(ods, urgent_rota())).status_code == 200
    clock = MonotonicClock()
    booking.app.state.embargoed_counts = EmbargoedCounts(booking.app.state.settings.search_rules_seconds, clock=clock)
    return clock


async def waiting(booking: Booking, **params) -> int:
    response = await booking.client.get("/api/v1/slots", headers=AGENT, params=params)
    assert response.status_code == 200, response.text
    return response.json()["embargoed"]["count"]


async def block_one_urgent_slot(booking: Booking, ods: str) -> None:
    """A change no request of this replica made (another replica's, say), straight in the database."""
    async with booking.app.state.db.transaction() as db_session:
        await db_session.execute(text("UPDATE slots SET status = 'blocked' WHERE id = (SELECT min(id) FROM slots "
                                      "WHERE ods_code = :ods AND slot_type = 'URGENT' AND status = 'free')"),
                                 {"ods": ods})


async def test_counts_are_read_once_while_fresh_and_again_once_older_than_allowed(
        booking: Booking, count_reads: list[list[str]]):
    clock = await seeded(booking)
    ttl = booking.app.state.settings.search_rules_seconds
    assert ttl > 0
    assert await waiting(booking, practice=[A, B]) == 12
    assert await waiting(booking, practice=A) == 6
    assert await waiting(booking, practice=[B, A]) == 12
    assert count_reads == [[A, B]]  # three searches, one read

    await block_one_urgent_slot(booking, A)
    clock.now += ttl / 2
    assert await waiting(booking, practice=A) == 6
    clock.now += ttl / 2
    assert await waiting(booking, practice=A) == 5
    assert await waiting(booking, practice=[A, B]) == 11
    assert count_reads == [[A, B], [A], [B]]  # B expired too; A was read again a moment before


async def test_this_replica_counts_afresh_once_it_replaces_a_rota_or_applies_a_rules_change(
        booking: Booking, count_reads: list[list[str]]):
    await seeded(booking)
    assert await waiting(booking, practice=[A, B]) == 12

    assert (await booking.put_rota(A, urgent_rota("09:00", "09:30"))).status_code == 200
    assert await waiting(booking, practice=[A, B]) == 9

    # A rota that is refused commits nothing, and the copy is kept.
    refused = await booking.put_rota(A, urgent_rota("10:00", "09:00"))
    assert refused.status_code == 422
    assert await waiting(booking, practice=[A, B]) == 9
    assert len(count_reads) == 2

    no_embargo = [t if t.code != "URGENT" else t.model_copy(update={"release": None}) for t in SLOT_TYPES]
    await booking.apply(SlotTypesReplaced(ods_code=B, slot_types=no_embargo, version=booking.next_version(B)))
    assert await waiting(booking, practice=[A, B]) == 3
    assert len(count_reads) == 3


async def test_a_search_with_clinician_filters_reads_its_counts_every_time(
        booking: Booking, count_reads: list[list[str]]):
    await seeded(booking)
    assert await waiting(booking, practice=A, role="gp") == 6
    await block_one_urgent_slot(booking, A)
    assert await waiting(booking, practice=A, role="gp") == 5
    assert await waiting(booking, practice=A, gender="female") == 0
    assert count_reads == [[A], [A], [A]]


async def test_the_copy_keeps_at_most_its_number_of_ranges(booking: Booking, count_reads: list[list[str]]):
    await seeded(booking)
    counts = booking.app.state.embargoed_counts
    counts.max_entries = 1
    for _ in range(2):
        assert await waiting(booking, practice=[A, B]) == 12  # two ranges do not fit: neither is kept
    assert count_reads == [[A, B], [A, B]]
    assert await waiting(booking, practice=A) == 6
    assert await waiting(booking, practice=A) == 6
    assert count_reads[2:] == [[A]]

    # Full of ranges that have expired: they make way.
    counts._clock.now += booking.app.state.settings.search_rules_seconds
    assert await waiting(booking, practice=B) == 6
    assert await waiting(booking, practice=B) == 6
    assert count_reads[3:] == [[B]]
    # A client's own `from` makes a range of its own.
    later = (TOMORROW + timedelta(days=1)).isoformat()
    assert await waiting(booking, practice=B, **{"from": later}) == 0
