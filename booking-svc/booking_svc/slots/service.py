"""What the centre may book now, and the free-slot figures other services follow.

A slot type's rules turn into time bounds on a slot's start, computed once per (practice, slot type) for the
current instant: not before `now + min_notice_minutes`, not after the end of the London day `max_days_ahead`
days from today, and, for a type with a release rule, only dates already released (released at `at_time`
London on the date `days_before` days before the slot's date). A search is then a union of index-friendly
ranges, and the same rules decide a single hold or booking."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy.ext.asyncio import AsyncSession

from booking_svc.registry import repository as registry
from booking_svc.registry.models import Practice, SlotType
from booking_svc.registry.repository import PracticeRow, SlotTypeRow
from booking_svc.slots import repository
from booking_svc.slots.models import BOOKED, HELD, Slot
from booking_svc.slots.repository import ClinicianRow, SlotRow
from services.auth import Principal, ensure_acts_for
from services.contracts.booking import SlotAvailabilityChanged
from services.errors import Conflict, Forbidden, NotFound, Unprocessable
from services.outbox import record_event
from services.pagination import decode_time_cursor, encode_time_cursor
from services.timeutil import LONDON, as_utc, london_date, london_iso

MAX_PRACTICES_PER_SEARCH = 50
IDS_PER_AVAILABILITY_EVENT = 1000
MAX_DAYS_AHEAD = 3660  # whatever a slot type says (dates must stay in range): nobody books ten years ahead


def london_midnight(day: date) -> datetime:
    """The UTC instant a London calendar day starts."""
    return datetime.combine(day, time(0), LONDON).astimezone(timezone.utc)


def london_day(day: date) -> tuple[datetime, datetime]:
    """[start, end) of a London calendar day in UTC (23 or 25 hours long on the days the clocks change)."""
    return london_midnight(day), london_midnight(day + timedelta(days=1))


def release_at(rules: SlotType | SlotTypeRow, slot_day: date) -> datetime | None:
    if rules.release_days_before is None or rules.release_at_time is None:
        return None
    day = slot_day - timedelta(days=_days(rules.release_days_before))
    return datetime.combine(day, rules.release_at_time, LONDON).astimezone(timezone.utc)


@dataclass(frozen=True)
class BookingWindow:
    earliest: datetime  # a slot must start at or after this
    released_before: datetime | None  # slots starting from here on are still embargoed (None: no embargo)
    latest: datetime  # and before this (end of the last bookable London day)


def booking_window(rules: SlotType | SlotTypeRow, now: datetime) -> BookingWindow:
    today = london_date(now)
    latest = london_midnight(today + timedelta(days=_days(rules.max_days_ahead) + 1))
    released_before = None
    if rules.release_days_before is not None and rules.release_at_time is not None:
        # Today's release (of the date `days_before` ahead) has happened once `at_time` London has passed.
        released_today = datetime.combine(today, rules.release_at_time, LONDON) <= now
        last_released = today + timedelta(days=_days(rules.release_days_before) - (0 if released_today else 1))
        released_before = london_midnight(last_released + timedelta(days=1))
    notice = timedelta(minutes=min(max(rules.min_notice_minutes, 0), MAX_DAYS_AHEAD * 24 * 60))
    return BookingWindow(earliest=now + notice, released_before=released_before, latest=latest)


def _days(value: int) -> int:
    return min(max(value, 0), MAX_DAYS_AHEAD)


def check_bookable(slot: Slot | SlotRow, practice: Practice | PracticeRow | None,
                   rules: SlotType | SlotTypeRow | None, now: datetime) -> None:
    """The rules a hold or a booking must pass; raises the Conflict a client can branch on."""
    if practice is None or not practice.is_active:
        raise Conflict("The practice is not taking bookings from the centre.", code="practice_suspended")
    if rules is None or not rules.bookable_by_centre:
        raise Conflict("The centre may not book this kind of slot.", code="not_bookable_by_centre")
    start = as_utc(slot.start_at)
    window = booking_window(rules, now)
    if start < window.earliest:
        raise Conflict(f"This slot needs {rules.min_notice_minutes} minutes' notice.", code="outside_booking_window")
    if window.released_before is not None and start >= window.released_before:
        released = release_at(rules, london_date(start))
        raise Conflict(f"This slot is released for booking at {london_iso(released)}.", code="embargoed",
                       release_at=london_iso(released))
    if start >= window.latest:
        raise Conflict(f"This slot is more than {rules.max_days_ahead} days ahead.", code="outside_booking_window")


def check_available(slot: Slot | SlotRow, *, holder: str, hold_id: str | None, now: datetime) -> None:
    """The quick answer from what was read; the conditional UPDATE that follows is the real guard."""
    if slot.status == BOOKED:
        raise Conflict("This slot has been booked.", code="slot_taken")
    live_hold = slot.status == HELD and slot.hold_expires_at is not None and as_utc(slot.hold_expires_at) > now
    if live_hold and not (slot.held_by == holder and (hold_id is None or slot.hold_id == hold_id)):
        raise Conflict("Someone else is holding this slot.", code="slot_held")


async def explain_refusal(session: AsyncSession, slot_id: str, *, holder: str, hold_id: str | None,
                          now: datetime) -> Conflict:
    """Why a conditional UPDATE on the slot changed nothing (it lost a race, or the hold is someone else's)."""
    slot = await repository.get_slot(session, slot_id, fresh=True)
    if slot is None:
        return Conflict("This slot no longer exists.", code="slot_taken")
    try:
        check_available(slot, holder=holder, hold_id=hold_id, now=now)
    except Conflict as refusal:
        return refusal
    return Conflict("This slot is held; present its hold.", code="slot_held")


# ---------------------------------------------------------------------------------------------- search

@dataclass(frozen=True)
class SlotQuery:
    practices: list[str]
    start: datetime | None = None
    end: datetime | None = None
    slot_type: str | None = None
    role: str | None = None
    gender: str | None = None
    channel: str | None = None
    include_pcn: bool = False
    limit: int = 50
    cursor: str | None = None


async def search(session: AsyncSession, principal: Principal, query: SlotQuery, now: datetime,
                 rules: registry.PracticeRules, waiting_counts: repository.EmbargoedCounts) -> dict:
    codes = sorted({p.strip().upper() for p in query.practices if p.strip()})
    if not codes:
        raise Unprocessable("Name at least one practice.", code="practice_required")
    if len(codes) > MAX_PRACTICES_PER_SEARCH:
        raise Unprocessable(f"At most {MAX_PRACTICES_PER_SEARCH} practices per search.", code="too_many_practices")
    for ods in codes:
        ensure_acts_for(principal, ods)
    if query.include_pcn and principal.is_practice:
        raise Forbidden("A practice key sees only its own practice's slots.", code="other_practice")
    after = decode_time_cursor(query.cursor)

    found, types = await rules.practices_and_slot_types(session, codes)
    offered = {ods for ods, p in found.items() if p.is_active}
    partners: set[str] = set()
    if query.include_pcn:
        members = await registry.pcn_members(session, {found[ods].pcn for ods in offered if found[ods].pcn})
        partners = {m.ods_code for m in members if m.is_active and m.ods_code not in codes}
        types.update(await registry.slot_types_of(session, partners))
    practices = offered | partners
    types = {key: rules for key, rules in types.items() if key[0] in practices}

    bookable, embargoed = [], []
    windows: dict[tuple, BookingWindow] = {}  # practices mostly share their rules: work each window out once
    for (ods, code), rules in sorted(types.items()):
        if not rules.bookable_by_centre or (ods in partners and not rules.shared_with_pcn):
            continue
        if (query.slot_type and code != query.slot_type) or (query.channel and rules.channel != query.channel):
            continue
        key = (rules.max_days_ahead, rules.min_notice_minutes, rules.release_days_before, rules.release_at_time)
        if (window := windows.get(key)) is None:
            window = windows[key] = booking_window(rules, now)
        lo = max(window.earliest, query.start) if query.start else window.earliest
        hi = min(window.latest, query.end) if query.end else window.latest
        released_before = window.released_before
        book_hi = hi if released_before is None else min(hi, released_before)
        if lo < book_hi:
            bookable.append((ods, code, lo, book_hi))
        if released_before is not None and max(lo, released_before) < hi:
            embargoed.append((ods, code, max(lo, released_before), hi))

    rows = await repository.search(session, bookable, now=now, role=query.role, gender=query.gender, after=after,
                                   limit=query.limit + 1)
    more = len(rows) > query.limit
    rows = rows[:query.limit]
    # The page's columns in the order `repository.search` selects them: unpacked, not read by name (50 rows).
    items = [{
        "id": slot_id,
        "practice": ods,
        "start": london_iso(start),
        "end": london_iso(end),
        "clinician": {"id": clinician_id, "name": name, "role": role, "gender": gender},
        "slot_type": code,
        "channel": types[(ods, code)].channel,
        "pcn_partner": ods in partners,
    } for slot_id, ods, start, end, code, clinician_id, name, role, gender in rows]
    next_cursor = encode_time_cursor(rows[-1][2], rows[-1][0]) if more else None  # start_at, id

    waiting = await waiting_counts.counts(session, embargoed, now=now, role=query.role, gender=query.gender)
    releases = [release_at(types[(ods, code)], london_date(first)) for ods, code, _n, first in waiting]
    next_release = min((r for r in releases if r is not None), default=None)
    return {"items": items, "next_cursor": next_cursor,
            "embargoed": {"count": sum(n for _o, _c, n, _f in waiting),
                          "next_release_at": london_iso(next_release) if next_release else None}}


# ---------------------------------------------------------------------------------------------- figures

async def free_slots_by_date(session: AsyncSession, ods_code: str, days: Iterable[date], now: datetime,
                             counted: Mapping[date, int] | None = None) -> dict[str, int]:
    """The free-slot count (slots still to start that can be held or booked) of each London day, by ISO date.
    `counted`: days whose count the caller read in the statement that made the change (no second query)."""
    touched = sorted(set(days))
    if counted and all(d in counted for d in touched):
        free = [counted[d] for d in touched]
    else:
        free = await repository.available_counts(session, ods_code, [london_day(d) for d in touched], now)
    return {d.isoformat(): n for d, n in zip(touched, free, strict=True)}


def day_counts(counted: Mapping[str, int | None], slots: Mapping[str, tuple[str, datetime]]
               ) -> dict[tuple[str, date], int]:
    """For a group-committed batch: the free-slot count of each (practice, London day) it took slots from, after
    the batch, from `counted` (the slots taken, a day's last with its count: see repository.claim_each) and each
    slot's (ODS code, start)."""
    counts: dict[tuple[str, date], int] = {}
    for slot_id, count in counted.items():
        if count is not None:
            ods, start = slots[slot_id]
            counts[(ods, london_date(start))] = count
    return counts


async def publish_availability(session: AsyncSession, ods_code: str, *, days: Iterable[date], now: datetime,
                               taken: Iterable[str] = (), freed: Iterable[str] = (),
                               counted: Mapping[date, int] | None = None) -> None:
    """SlotAvailabilityChanged with the free-slot counts of every London day a change touched (see
    `free_slots_by_date`); long id lists are split over several events. An appointment change carries its counts
    in its own event instead."""
    days = set(days)
    if not days:
        return
    counts = await free_slots_by_date(session, ods_code, days, now, counted)
    taken_ids, freed_ids = sorted(set(taken)), sorted(set(freed))
    parts = max(1, -(-max(len(taken_ids), len(freed_ids)) // IDS_PER_AVAILABILITY_EVENT))
    for part in range(parts):
        window = slice(part * IDS_PER_AVAILABILITY_EVENT, (part + 1) * IDS_PER_AVAILABILITY_EVENT)
        await record_event(session, SlotAvailabilityChanged(
            ods_code=ods_code, free_slots_by_date=counts, taken_slot_ids=taken_ids[window],
            freed_slot_ids=freed_ids[window]), subject_key=ods_code)


# ---------------------------------------------------------------------------------------------- one slot

def holder_key(principal: Principal) -> str:
    """Who a hold belongs to."""
    return f"{principal.role}:{principal.subject}"


async def load_for_booking(
        session: AsyncSession, principal: Principal, slot_id: str, nhs_number: str | None = None,
) -> tuple[SlotRow, PracticeRow | None, SlotTypeRow | None, ClinicianRow | None, bool]:
    """The slot with its practice, rules and clinician, and whether `nhs_number` is registered at the slot's
    practice (one query), refused if the principal may not act for it."""
    return found_for_booking(principal, await repository.get_slot_for_booking(session, slot_id, nhs_number))


def found_for_booking(principal: Principal, found: tuple | None) -> tuple:
    """What `repository.get_slot_for_booking` found, refused if there is no such slot or the principal may not act
    for its practice."""
    if found is None:
        raise NotFound("There is no such slot.", code="slot_not_found")
    ensure_acts_for(principal, found[0].ods_code)
    return found


def parse_time_bound(value: str | None, *, name: str, end: bool = False) -> datetime | None:
    """`from`/`to` of a listing: a London date (a `to` date includes that whole day) or a date-time (without an
    offset it is London time)."""
    if value is None or value == "":
        return None
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return london_midnight(day + timedelta(days=1) if end else day)
        instant = datetime.fromisoformat(value)
        return (instant.replace(tzinfo=LONDON) if instant.tzinfo is None else instant).astimezone(timezone.utc)
    except (ValueError, OverflowError) as exc:
        raise Unprocessable(f"`{name}` is a date (YYYY-MM-DD) or an ISO 8601 date-time.", code="invalid_time") from exc
