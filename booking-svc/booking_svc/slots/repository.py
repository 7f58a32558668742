"""Slot queries. Every "is this slot available?" goes through `available(now)`, so an expired hold is treated
as absent everywhere, with no sweeper needed; holds and bookings are conditional UPDATEs on the slot row."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import (BindParameter, Boolean, ColumnElement, Integer, String, and_, any_, bindparam, case,
                        delete, exists, false, func, literal_column, null, or_, select, update)
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Update

from booking_svc.db import chunks, dialect_name
from booking_svc.registry.models import Clinician, Practice, Registration, SlotType
from booking_svc.registry.repository import PracticeRow, SlotTypeRow
from booking_svc.slots.models import BOOKED, FREE, HELD, Slot
from services.db import DriverStatement, driver_rows, select_rows
from services.freshcopy import FreshCopy
from services.groupcommit import Batch

# (ods_code, slot_type, start at or after, start before)
TimeRange = tuple[str, str, datetime, datetime]


# Not booked, in the words of the partial indexes' predicate (models.OPEN_STATUSES_SQL): literal values, not
# parameters, so that the database can use those indexes for every statement below, generic plans included.
OPEN = Slot.status.in_([literal_column(f"'{FREE}'"), literal_column(f"'{HELD}'")])


def available(now: datetime | BindParameter[datetime]) -> ColumnElement[bool]:
    return and_(OPEN, or_(Slot.status == FREE, Slot.hold_expires_at <= now))


_CLINICIAN_JOIN = and_(Clinician.ods_code == Slot.ods_code, Clinician.clinician_id == Slot.clinician_id)

# The statements every hold and booking runs are built once, with named parameters: building the expressions
# and computing their cache keys on each request cost about 2 of a booking's 9 ms of CPU
# (tests/booking_svc/bench_booking_cpu.py).
_AVAILABLE_AT_NOW = available(bindparam("p_now"))
# Whether the patient (p_nhs; "" for none) is registered at the slot's own practice, the usual case, is answered
# in the same round trip; only a PCN-shared slot for another practice's patient needs a second query.
_REGISTERED_HERE = exists().where(Registration.nhs_number == bindparam("p_nhs"),
                                  Registration.ods_code == Slot.ods_code).label("registered_here")


class SlotRow(NamedTuple):
    """A slot as a hold or booking reads it: a plain row, not a tracked object."""
    id: str
    ods_code: str
    session_id: str
    clinician_id: str
    slot_type: str
    start_at: datetime
    end_at: datetime
    status: str
    hold_id: str | None
    held_by: str | None
    hold_expires_at: datetime | None


class ClinicianRow(NamedTuple):
    ods_code: str
    clinician_id: str
    name: str
    role: str
    gender: str | None


# The slot, its practice, its type's rules and its clinician as one row of plain columns, sliced into tuples: loading
# four ORM objects per hold and booking cost more CPU than the statement's round trip.
_PARTS = ((SlotRow, Slot), (PracticeRow, Practice), (SlotTypeRow, SlotType), (ClinicianRow, Clinician))
_SLOT_FOR_BOOKING = (select(*(getattr(model, name) for row, model in _PARTS for name in row._fields), _REGISTERED_HERE)
                     .outerjoin(Practice, Practice.ods_code == Slot.ods_code)
                     .outerjoin(SlotType, and_(SlotType.ods_code == Slot.ods_code, SlotType.code == Slot.slot_type))
                     .outerjoin(Clinician, _CLINICIAN_JOIN)
                     .where(Slot.id == bindparam("p_slot_id")))
_CLEAR_HOLD = {"hold_id": None, "held_by": None, "hold_expires_at": None}
_BOOK_FREE = (update(Slot.__table__).where(Slot.id == bindparam("p_slot_id"), _AVAILABLE_AT_NOW)
              .values(status=BOOKED, **_CLEAR_HOLD).returning(Slot.id))
_BOOK_FREE_OR_OWN_HOLD = (
    update(Slot.__table__)
    .where(Slot.id == bindparam("p_slot_id"),
           or_(_AVAILABLE_AT_NOW, and_(Slot.status == HELD, Slot.hold_id == bindparam("p_hold_id"),
                                       Slot.held_by == bindparam("p_holder"))))
    .values(status=BOOKED, **_CLEAR_HOLD).returning(Slot.id))
_HOLD = (update(Slot.__table__)
         .where(Slot.id == bindparam("p_slot_id"),
                or_(_AVAILABLE_AT_NOW, and_(Slot.status == HELD, Slot.held_by == bindparam("p_holder"))))
         .values(status=HELD, hold_id=bindparam("p_new_hold_id"), held_by=bindparam("p_holder"),
                 hold_expires_at=bindparam("p_expires_at"))
         .returning(Slot.id))
_FREE_IN_DAY = select(func.count()).where(Slot.ods_code == bindparam("p_ods"), Slot.start_at >= bindparam("p_lo"),
                                          Slot.start_at < bindparam("p_hi"), _AVAILABLE_AT_NOW)

# A slot claimed by a conditional UPDATE and its day's free count, in one round trip on PostgreSQL (a data-modifying
# WITH, which SQLite lacks). Every part of one statement sees the snapshot from before the UPDATE, so the count
# leaves the claimed slot out by its id instead of seeing it booked.
FREE_IN_DAY_BESIDES = _FREE_IN_DAY.where(Slot.id != bindparam("p_slot_id"))
_HELD = _HOLD.cte("held")
_HOLD_AND_COUNT = select(_HELD.c.id, FREE_IN_DAY_BESIDES.scalar_subquery())


def _range_groups(ranges: Sequence[TimeRange]) -> list[tuple[str, datetime, datetime, list[str]]]:
    """Practices whose slot type has the same window share one group: the usual search (the same rules at every
    practice) is one condition, not one per practice to build, bind and plan."""
    groups: dict[tuple[str, datetime, datetime], list[str]] = {}
    for ods, code, lo, hi in ranges:
        groups.setdefault((code, lo, hi), []).append(ods)
    return [(code, lo, hi, codes) for (code, lo, hi), codes in groups.items()]


def _search_params(ranges: Sequence[TimeRange], *, now: datetime, role: str | None,
                   gender: str | None) -> tuple[tuple[bool, ...], dict[str, Any]]:
    """The statement's shape (for each range group, whether it is one practice's) and its parameters (see
    `_slot_filters`)."""
    groups = _range_groups(ranges)
    params: dict[str, Any] = {"p_now": now, "p_role": role.lower() if role else None,
                              "p_gender": gender.lower() if gender else None}
    for i, (code, lo, hi, codes) in enumerate(groups):
        params.update({f"p_type_{i}": code, f"p_lo_{i}": lo, f"p_hi_{i}": hi})
        params[f"p_code_{i}" if len(codes) == 1 else f"p_codes_{i}"] = codes[0] if len(codes) == 1 else codes
    return tuple(len(codes) == 1 for _c, _l, _h, codes in groups), params


def _slot_filters(dialect: str, shape: tuple[bool, ...], role: bool, gender: bool) -> list[ColumnElement[bool]]:
    """Available slots in the ranges of `shape`'s groups (practices, slot type, [lo, hi)), optionally of a
    clinician's role and gender. All values are parameters, so each shape of search is built and compiled once.
    One practice is an equality, which lets PostgreSQL walk that practice's slots in start order and stop at the
    page's end: with `= ANY` of a one-element array its plans walked every practice's slots in start order instead
    (8,300 rows read for a 51-slot page, 3-4.5 ms, against 200 rows and 0.2-0.4 ms). Several practices are one
    array parameter (`= ANY`) on PostgreSQL, so the statement's text, and its prepared statement, stays the same
    whatever their number; SQLite has no arrays, and gets `IN` expanded per execution."""
    def practices(i: int) -> ColumnElement[bool]:
        if shape[i]:
            return Slot.ods_code == bindparam(f"p_code_{i}")
        if dialect == "postgresql":
            return Slot.ods_code == any_(bindparam(f"p_codes_{i}", type_=postgresql.ARRAY(String)))
        return Slot.ods_code.in_(bindparam(f"p_codes_{i}", expanding=True))
    ranges = or_(*(and_(practices(i), Slot.slot_type == bindparam(f"p_type_{i}"),
                        Slot.start_at >= bindparam(f"p_lo_{i}"), Slot.start_at < bindparam(f"p_hi_{i}"))
                   for i in range(len(shape)))) if shape else false()
    clinician = []
    if role:
        clinician.append(func.lower(Clinician.role) == bindparam("p_role"))
    if gender:
        clinician.append(func.lower(Clinician.gender) == bindparam("p_gender"))
    # As EXISTS: the slot queries join clinicians only for what they show.
    return [ranges, _AVAILABLE_AT_NOW, *([exists().where(_CLINICIAN_JOIN, *clinician)] if clinician else [])]


@functools.lru_cache(maxsize=256)
def _search_statement(dialect: str, shape: tuple[bool, ...], role: bool, gender: bool,
                      paged: bool) -> DriverStatement:
    """The first page of available slots, earliest first, with their clinicians. The clinicians are joined to that
    page only: joined before the LIMIT, a plan from stale statistics (a rota just published, not yet analysed)
    joined every slot of 20 practices' fortnight to the clinicians before sorting (350-470 ms in PostgreSQL)."""
    filters = _slot_filters(dialect, shape, role, gender)
    if paged:
        filters.append(or_(Slot.start_at > bindparam("p_after_start"),
                           and_(Slot.start_at == bindparam("p_after_start"), Slot.id > bindparam("p_after_id"))))
    page = (select(Slot.id, Slot.ods_code, Slot.start_at, Slot.end_at, Slot.slot_type, Slot.clinician_id)
            .where(*filters).order_by(Slot.start_at, Slot.id).limit(bindparam("p_limit", type_=Integer))
            .subquery("page"))
    return DriverStatement(select(page, Clinician.name, Clinician.role, Clinician.gender)
                           .outerjoin(Clinician, and_(Clinician.ods_code == page.c.ods_code,
                                                      Clinician.clinician_id == page.c.clinician_id))
                           .order_by(page.c.start_at, page.c.id))


@functools.lru_cache(maxsize=256)
def _embargoed_statement(dialect: str, shape: tuple[bool, ...], role: bool, gender: bool) -> DriverStatement:
    return DriverStatement(select(Slot.ods_code, Slot.slot_type, func.count(), func.min(Slot.start_at))
                           .where(*_slot_filters(dialect, shape, role, gender))
                           .group_by(Slot.ods_code, Slot.slot_type))


async def get_slot(session: AsyncSession, slot_id: str, *, fresh: bool = False) -> Slot | None:
    """`fresh` reads the row again even if this session loaded it before (after a conditional UPDATE lost)."""
    query = select(Slot).where(Slot.id == slot_id).execution_options(populate_existing=fresh)
    return (await session.execute(query)).scalar_one_or_none()


async def get_slot_for_booking(
        session: AsyncSession, slot_id: str, nhs_number: str | None = None,
) -> tuple[SlotRow, PracticeRow | None, SlotTypeRow | None, ClinicianRow | None, bool] | None:
    """The slot with its practice, slot type and clinician (each None if the local copy lacks it), and whether the
    patient is registered at the slot's practice, in one round trip."""
    rows = await select_rows(session, _SLOT_FOR_BOOKING, {"p_slot_id": slot_id, "p_nhs": nhs_number or ""})
    return _for_booking(tuple(rows[0])) if rows else None


def _for_booking(values: Sequence[Any]) -> tuple[SlotRow, PracticeRow | None, SlotTypeRow | None,
                                                 ClinicianRow | None, bool]:
    parts, at = [], 0
    for row_type, _model in _PARTS:
        part = values[at:at + len(row_type._fields)]
        at += len(part)
        parts.append(row_type(*part) if part[0] is not None else None)  # an outer join that found nothing
    slot, practice, rules, clinician = parts
    return slot, practice, rules, clinician, bool(values[at])


# ---------------------------------------------------------------------------------------------- batches
# The same statements as one hold or booking, run for a whole group-committed batch on the driver's connection
# (services.groupcommit): every parameter set in one round trip.
_SLOT_FOR_BOOKING_EACH = DriverStatement(_SLOT_FOR_BOOKING)
# A batch's claims and holds count their day's free slots in the same statement, as one hold does: a round trip
# less per batch, each of which waits for a turn of a busy event loop. Each execution sees the batch's earlier
# ones, so only a day's last claim counts (p_count), for the day's count after the batch: counting at every claim
# cost PostgreSQL a fifth more CPU per booking in big batches of few days.
_CLAIMED = _BOOK_FREE_OR_OWN_HOLD.cte("claimed")  # no hold: p_hold_id NULL, which no slot's hold_id equals
_COUNT_IF_ASKED = case((bindparam("p_count", type_=Boolean), FREE_IN_DAY_BESIDES.scalar_subquery()), else_=null())
_CLAIM_AND_COUNT_EACH = DriverStatement(select(_CLAIMED.c.id, _COUNT_IF_ASKED))
_HOLD_AND_COUNT_EACH = DriverStatement(select(_HELD.c.id, _COUNT_IF_ASKED))
_FREE_IN_DAY_EACH = DriverStatement(_FREE_IN_DAY)


async def slots_for_booking_each(batch: Batch, wanted: Sequence[tuple[str, str]]) -> dict[str, tuple]:
    """`get_slot_for_booking` for each (slot id, NHS number), by slot id (the slots are distinct); a slot that
    does not exist is missing."""
    rows = await _SLOT_FOR_BOOKING_EACH.fetch_each(batch.driver, batch.dialect,
                                                   [{"p_slot_id": slot_id, "p_nhs": nhs} for slot_id, nhs in wanted])
    return {row[0]: _for_booking(tuple(row)) for row in rows}


async def claim_each(batch: Batch, claims: Sequence[Mapping[str, Any]]) -> dict[str, int | None]:
    """`book` for each of `claims` (`claim_params` with the slot's day's `free_in_day_params`), in slot-id order so
    concurrent batches take the slot locks in one order. Returns the slots claimed, in the order they ran; each
    day's last one has the day's free count after the batch, the others None."""
    return await _run_counted(_CLAIM_AND_COUNT_EACH, batch, [{"p_hold_id": None, "p_holder": None, **c} for c in claims])


async def hold_each(batch: Batch, holds: Sequence[Mapping[str, Any]]) -> dict[str, int | None]:
    """`hold` for each of `holds` (`hold_params` with the slot's day's `free_in_day_params`), in slot-id order;
    returns the slots held, as `claim_each` does."""
    return await _run_counted(_HOLD_AND_COUNT_EACH, batch, holds)


async def _run_counted(statement: DriverStatement, batch: Batch,
                       params: Sequence[Mapping[str, Any]]) -> dict[str, int | None]:
    ordered = sorted(params, key=lambda p: p["p_slot_id"])
    last_of_day = {(p["p_ods"], p["p_hi"]): p["p_slot_id"] for p in ordered}
    counting = set(last_of_day.values())
    rows = await statement.fetch_each(batch.driver, batch.dialect,
                                      [{**p, "p_count": p["p_slot_id"] in counting} for p in ordered])
    taken: dict[str, int | None] = {row[0]: None if row[1] is None else int(row[1]) for row in rows}
    # A day whose last claim lost its race has no count yet: count it now, as of the last claim that took.
    uncounted: dict[tuple[str, datetime], tuple[str, Mapping[str, Any]]] = {}
    for p in ordered:
        if p["p_slot_id"] in taken and last_of_day[(p["p_ods"], p["p_hi"])] not in taken:
            uncounted[(p["p_ods"], p["p_hi"])] = (p["p_slot_id"], p)
    if uncounted:
        counts = await _FREE_IN_DAY_EACH.fetch_each(batch.driver, batch.dialect, [
            {name: p[name] for name in ("p_ods", "p_lo", "p_hi", "p_now")} for _s, p in uncounted.values()])
        for (slot_id, _p), row in zip(uncounted.values(), counts, strict=True):
            taken[slot_id] = int(row[0])
    return taken


async def search(session: AsyncSession, ranges: Sequence[TimeRange], *, now: datetime, role: str | None,
                 gender: str | None, after: tuple[datetime, str] | None, limit: int) -> list:
    """The first `limit` available slots in the ranges (after `after`, a page's last start and id), earliest
    first, with their clinicians: rows of (id, ods_code, start_at, end_at, slot_type, clinician_id, name, role,
    gender)."""
    shape, params = _search_params(ranges, now=now, role=role, gender=gender)
    if after is not None:
        params["p_after_start"], params["p_after_id"] = after
    statement = _search_statement(dialect_name(session), shape, bool(role), bool(gender), after is not None)
    return await driver_rows(session, statement, {**params, "p_limit": limit})


async def embargoed(session: AsyncSession, ranges: Sequence[TimeRange], *, now: datetime, role: str | None,
                    gender: str | None) -> list:
    """(ods_code, slot_type, count, earliest start) of available slots still under embargo."""
    if not ranges:
        return []
    shape, params = _search_params(ranges, now=now, role=role, gender=gender)
    statement = _embargoed_statement(dialect_name(session), shape, bool(role), bool(gender))
    return await driver_rows(session, statement, params)


class EmbargoedCounts(FreshCopy[TimeRange, tuple[int, datetime | None]]):
    """How many available slots still wait for their release in each (practice, slot type, [lo, hi)) range, for
    searches without clinician filters, kept in memory for a short while. Every search asked the database for
    these in a statement of its own, about a sixth of a one-practice search's CPU in booking-svc, and the numbers
    hardly move: a slot under embargo cannot be held or booked, so they change with a rota or a practice's rules,
    and a range's bounds are London midnights that move once a day. This process forgets them once it replaces a
    rota or applies a rules event (`clear`, after the commit); another replica's copy is at most `ttl_seconds`
    old, like its PracticeRules. It holds at most `max_entries` ranges (a client's `from` can make up new ones)."""

    async def counts(self, session: AsyncSession, ranges: Sequence[TimeRange], *, now: datetime, role: str | None,
                     gender: str | None) -> list[tuple[str, str, int, datetime]]:
        """As `embargoed`, from memory where the copy is fresh; a range with nothing waiting is left out."""
        if role or gender:
            return await embargoed(session, ranges, now=now, role=role, gender=gender)

        async def load(missing: list[TimeRange]) -> dict[TimeRange, tuple[int, datetime | None]]:
            # A search names each practice's slot type once, so (ODS code, slot type) tells its range.
            read = {(ods, code): (int(n), first) for ods, code, n, first in
                    await embargoed(session, missing, now=now, role=None, gender=None)}
            return {key: read.get((key[0], key[1]), (0, None)) for key in missing}

        waiting = await self.get(ranges, load)
        return [(ods, code, n, first) for (ods, code, _lo, _hi), (n, first) in waiting.items() if n]


async def available_counts(session: AsyncSession, ods_code: str, bounds: Sequence[tuple[datetime, datetime]],
                           now: datetime) -> list[int]:
    """How many slots that can be held or booked start in each [lo, hi) (and not before now): one query and
    one row, counted by the database instead of fetching every start."""
    if not bounds:
        return []
    if len(bounds) == 1:  # a hold or a booking: one day
        return [int((await session.execute(_FREE_IN_DAY, free_in_day_params(ods_code, bounds[0], now))).scalar_one())]
    columns = [func.coalesce(func.sum(case((and_(Slot.start_at >= max(lo, now), Slot.start_at < hi), 1), else_=0)), 0)
               for lo, hi in bounds]
    row = (await session.execute(select(*columns).where(
        Slot.ods_code == ods_code, Slot.start_at >= max(bounds[0][0], now), Slot.start_at < bounds[-1][1],
        available(now)))).one()
    return [int(n) for n in row]


async def hold(session: AsyncSession, slot_id: str, *, ods_code: str, hold_id: str, holder: str,
               expires_at: datetime, now: datetime, day: tuple[datetime, datetime]) -> int | None:
    """Take a hold if the slot is free, its hold has expired, or the same holder is renewing it. Returns None if
    it could not, else how many slots can still be held or booked in `day` [lo, hi)."""
    params = hold_params(slot_id, hold_id=hold_id, holder=holder, expires_at=expires_at, now=now)
    if dialect_name(session) == "postgresql":
        row = (await session.execute(_HOLD_AND_COUNT, {**params, **free_in_day_params(ods_code, day, now)})).first()
        return None if row is None else int(row[1])
    if (await session.execute(_HOLD, params)).first() is None:
        return None
    return (await available_counts(session, ods_code, [day], now))[0]


def hold_params(slot_id: str, *, hold_id: str, holder: str, expires_at: datetime, now: datetime) -> dict[str, Any]:
    return {"p_slot_id": slot_id, "p_holder": holder, "p_now": now, "p_new_hold_id": hold_id,
            "p_expires_at": expires_at}


async def release_hold(session: AsyncSession, hold_id: str, *, holder: str, now: datetime) -> Slot | None:
    result = await session.execute(
        update(Slot)
        .where(Slot.hold_id == hold_id, Slot.held_by == holder, Slot.status == HELD, Slot.hold_expires_at > now)
        .values(status=FREE, hold_id=None, held_by=None, hold_expires_at=None)
        .returning(Slot.id, Slot.ods_code, Slot.start_at)
        .execution_options(synchronize_session=False))
    return result.first()


async def live_hold(session: AsyncSession, hold_id: str, now: datetime) -> Slot | None:
    query = select(Slot).where(Slot.hold_id == hold_id, Slot.status == HELD, Slot.hold_expires_at > now)
    return (await session.execute(query)).scalar_one_or_none()


def claim_statement(own_hold: bool) -> Update:
    """The conditional UPDATE that books a slot (RETURNING its id): free, its hold expired, or, with `own_hold`,
    held by the caller with the hold it presents. Parameters from `claim_params`."""
    return _BOOK_FREE_OR_OWN_HOLD if own_hold else _BOOK_FREE


def claim_params(slot_id: str, *, holder: str, hold_id: str | None, now: datetime) -> dict:
    params = {"p_slot_id": slot_id, "p_now": now}
    return {**params, "p_hold_id": hold_id, "p_holder": holder} if hold_id else params


def free_in_day_params(ods_code: str, day: tuple[datetime, datetime], now: datetime) -> dict:
    """Parameters of the day's free count (FREE_IN_DAY_BESIDES shares `p_now` with the claim it sits beside)."""
    return {"p_ods": ods_code, "p_lo": max(day[0], now), "p_hi": day[1], "p_now": now}


async def book(session: AsyncSession, slot_id: str, *, holder: str, hold_id: str | None, now: datetime) -> bool:
    """Mark the slot booked if it is free, its hold has expired, or this holder presents its own hold."""
    params = claim_params(slot_id, holder=holder, hold_id=hold_id, now=now)
    return (await session.execute(claim_statement(bool(hold_id)), params)).first() is not None


async def free(session: AsyncSession, slot_id: str) -> bool:
    result = await session.execute(
        update(Slot).where(Slot.id == slot_id, Slot.status == BOOKED)
        .values(status=FREE, hold_id=None, held_by=None, hold_expires_at=None)
        .returning(Slot.id)
        .execution_options(synchronize_session=False))
    return result.first() is not None


async def in_window(session: AsyncSession, ods_code: str, lo: datetime, hi: datetime) -> list:
    rows = await session.execute(select(Slot.id, Slot.start_at).where(
        Slot.ods_code == ods_code, Slot.start_at >= lo, Slot.start_at < hi))
    return list(rows.all())


async def delete_many(session: AsyncSession, slot_ids: Iterable[str]) -> None:
    for chunk in chunks(sorted(slot_ids)):
        await session.execute(delete(Slot).where(Slot.id.in_(chunk)).execution_options(synchronize_session=False))


async def insert_many(session: AsyncSession, rows: list[dict]) -> None:
    if rows:
        await session.execute(Slot.__table__.insert(), rows)
