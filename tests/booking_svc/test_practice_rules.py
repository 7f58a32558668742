"""Searches read practices' rules from memory (booking_svc.registry.repository.PracticeRules): once while fresh, again
at once after this replica applies a registry change, and within the time allowed after another replica applies
one."""

from __future__ import annotations

import asyncio

import pytest

from booking_svc.registry import repository
from booking_svc.registry.consumers import HANDLERS
from booking_svc.registry.repository import PracticeRules
from services.contracts.registry import PracticeUpdated, SlotTypeRules, SlotTypesReplaced
from services.events import Envelope
from tests.booking_svc.conftest import SLOT_TYPES, TOMORROW, Booking, rota, session
from tests.support.apps import AGENT

A, B = "A81001", "A81002"


class MonotonicClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def rules_reads(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The practices each read of the rules from the database asked for (the real query still runs)."""
    reads: list[list[str]] = []
    real = repository.practices_and_slot_types

    async def counted(session, ods_codes):
        reads.append(sorted(ods_codes))
        return await real(session, ods_codes)

    monkeypatch.setattr(repository, "practices_and_slot_types", counted)
    return reads


async def seeded(booking: Booking) -> MonotonicClock:
    for ods in (A, B):
        await booking.seed_practice(ods)
        body = rota([session("routine", TOMORROW, "09:00", "10:00"),
                     session("notice", TOMORROW, "11:00", "12:00", clinician="C2", slot_type="NOTICE")])
        assert (await booking.put_rota(ods, body)).status_code == 200
    clock = MonotonicClock()
    booking.app.state.practice_rules = PracticeRules(booking.app.state.settings.search_rules_seconds, clock=clock)
    return clock


def slot_types(items: list[dict]) -> set[tuple[str, str]]:
    return {(s["practice"], s["slot_type"]) for s in items}


async def test_rules_are_read_once_while_fresh_and_again_once_this_replica_applies_a_change(
        booking: Booking, rules_reads: list[list[str]]):
    await seeded(booking)
    first = await booking.slots(AGENT, practice=[A, B])
    assert slot_types(first) == {(A, "ROUTINE"), (A, "NOTICE"), (B, "ROUTINE"), (B, "NOTICE")}
    assert await booking.slots(AGENT, practice=[A, B]) == first
    assert await booking.slots(AGENT, practice=A) == [s for s in first if s["practice"] == A]
    assert rules_reads == [[A, B]]  # three searches, one read

    # This replica applies a change (the consumer's after-commit): the very next search follows it.
    not_bookable = [t if t.code != "NOTICE" else SlotTypeRules(**{**t.model_dump(), "bookable_by_centre": False})
                     for t in SLOT_TYPES]
    await booking.apply(SlotTypesReplaced(ods_code=A, slot_types=not_bookable, version=booking.next_version(A)))
    assert slot_types(await booking.slots(AGENT, practice=[A, B])) == {(A, "ROUTINE"), (B, "ROUTINE"), (B, "NOTICE")}
    await booking.apply(PracticeUpdated(ods_code=B, name="Surgery B", status="suspended",
                                        version=booking.next_version(B)))
    assert slot_types(await booking.slots(AGENT, practice=[A, B])) == {(A, "ROUTINE")}
    assert len(rules_reads) == 3


async def test_a_change_another_replica_applied_is_searched_with_once_the_copy_is_older_than_allowed(
        booking: Booking, rules_reads: list[list[str]]):
    clock = await seeded(booking)
    ttl = booking.app.state.settings.search_rules_seconds
    assert ttl > 0
    assert slot_types(await booking.slots(AGENT, practice=A)) == {(A, "ROUTINE"), (A, "NOTICE")}

    # Another replica's consumer wrote the change: this replica was not told.
    event = PracticeUpdated(ods_code=A, name="Surgery A", status="suspended", version=booking.next_version(A))
    envelope = Envelope.wrap(event, producer="practice-registry-svc", subject_key=A, correlation_id=None)
    async with booking.app.state.db.transaction() as db_session:
        await HANDLERS[PracticeUpdated](db_session, envelope, event)

    clock.now += ttl / 2
    assert slot_types(await booking.slots(AGENT, practice=A)) == {(A, "ROUTINE"), (A, "NOTICE")}
    clock.now += ttl / 2
    assert await booking.slots(AGENT, practice=A) == []
    assert rules_reads == [[A], [A]]


async def test_a_code_that_is_no_practice_is_not_kept(booking: Booking, rules_reads: list[list[str]]):
    await seeded(booking)
    for _ in range(2):
        assert await booking.slots(AGENT, practice=[A, "Z99999"]) != []
    assert rules_reads == [[A, "Z99999"], ["Z99999"]]


async def test_rules_read_while_the_copy_was_emptied_are_used_once_and_not_kept(monkeypatch: pytest.MonkeyPatch):
    """A change committed while a search was reading the old rules: that search may use them (it started first),
    but they must not be kept for the next one."""
    rules = PracticeRules(60.0, clock=MonotonicClock())
    reads = 0

    async def read_then_cleared(session, ods_codes):
        nonlocal reads
        reads += 1
        rules.clear()  # the consumer commits a change while this read is on the wire
        await asyncio.sleep(0)
        return {A: repository.PracticeRow(A, None, "active")}, {}

    monkeypatch.setattr(repository, "practices_and_slot_types", read_then_cleared)
    found, _types = await rules.practices_and_slot_types(None, [A])
    assert list(found) == [A]
    await rules.practices_and_slot_types(None, [A])
    assert reads == 2
