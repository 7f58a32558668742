"""Replacing a practice's rota for a window of dates, in one transaction.

Slots are made on London wall time (09:00-12:00 gives 09:00..11:50 local on any day, clock change or not) and
stored in UTC. A slot's id is a uuid5 of what defines it (practice, session, UTC start and end, clinician, type),
so the same body twice changes nothing, and a change to a slot's definition is a removal plus a creation. The
window's existing slots are compared with the wanted ones by id set; inserts and deletes are set-based.
Slots that have already started are history: a rota neither creates nor removes them."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy.ext.asyncio import AsyncSession

from booking_svc.appointments import service as appointments
from booking_svc.registry import repository as registry
from booking_svc.rotas.schemas import RotaIn, RotaSessionIn
from booking_svc.slots import repository as slots
from booking_svc.slots.models import FREE
from booking_svc.slots.service import london_midnight, publish_availability
from services.audit import record_audit
from services.auth import Principal, ensure_acts_for
from services.contracts.audit import BookingAuditRecorded
from services.contracts.booking import SlotsPublished
from services.errors import NotFound, Unprocessable
from services.outbox import record_event
from services.timeutil import LONDON, london_date

SLOT_NAMESPACE = uuid.UUID("6f1c2b0e-4a57-4d0f-9a53-2f6c1e0b7d10")
MAX_SESSION = timedelta(hours=24)
MAX_SLOTS_PER_ROTA = 100_000  # several times a large practice's 12 weeks; bounds the work one request asks for


@dataclass(frozen=True, slots=True)
class PlannedSlot:
    id: str
    session_id: str
    clinician_id: str
    slot_type: str
    start: datetime  # UTC
    end: datetime  # UTC


class RotaError(ValueError):
    pass


def london_wall_time(value: datetime) -> datetime:
    """A naive London wall time: a naive input already is one; an aware one is converted."""
    return value if value.tzinfo is None else value.astimezone(LONDON).replace(tzinfo=None)


def wall_to_utc(wall: datetime) -> datetime:
    earlier, later = wall.replace(tzinfo=LONDON, fold=0), wall.replace(tzinfo=LONDON, fold=1)
    if earlier.utcoffset() != later.utcoffset():
        exists = earlier.astimezone(timezone.utc).astimezone(LONDON).replace(tzinfo=None) == wall
        problem = "happens twice (clocks go back)" if exists else "does not exist (clocks go forward)"
        raise RotaError(f"{wall:%H:%M} on {wall:%Y-%m-%d} {problem} in London; move the slot boundary")
    return earlier.astimezone(timezone.utc)


def slot_id(ods_code: str, session_id: str, start: datetime, end: datetime, clinician_id: str, slot_type: str) -> str:
    name = "|".join((ods_code, session_id, start.isoformat(), end.isoformat(), clinician_id, slot_type))
    return uuid.uuid5(SLOT_NAMESPACE, name).hex


def plan_session(ods_code: str, session: RotaSessionIn) -> list[PlannedSlot]:
    """The slots of one session: each slot's London wall time first, then converted to UTC."""
    wall_start, wall_end = london_wall_time(session.start), london_wall_time(session.end)
    if wall_end <= wall_start:
        raise RotaError("end must be after start")
    length = wall_end - wall_start
    if length > MAX_SESSION:
        raise RotaError("a session lasts at most 24 hours")
    step = timedelta(minutes=session.slot_minutes)
    if length % step:
        raise RotaError(f"the session's {int(length.total_seconds() // 60)} minutes are not a whole number of "
                        f"{session.slot_minutes}-minute slots (partial slots are not made)")
    planned = []
    for k in range(length // step):
        wall = wall_start + k * step
        start, end = wall_to_utc(wall), wall_to_utc(wall + step)
        planned.append(PlannedSlot(slot_id(ods_code, session.session_id, start, end, session.clinician_id,
                                           session.slot_type),
                                   session.session_id, session.clinician_id, session.slot_type, start, end))
    return planned


def plan(ods_code: str, body: RotaIn, clinicians: set[str], slot_types: set[str]) -> tuple[list[PlannedSlot], list[dict]]:
    """Every slot the body asks for, and every bad row with its reason (the whole body is refused if any)."""
    window_end = datetime.combine(body.to, time(0))
    errors: list[dict] = []
    planned: list[PlannedSlot] = []
    seen: dict[str, int] = {}
    spans: dict[str, list[tuple[datetime, datetime, int]]] = defaultdict(list)

    def refuse(index: int, reason: str) -> None:
        errors.append({"index": index, "session_id": body.sessions[index].session_id, "reason": reason})

    for index, session in enumerate(body.sessions):
        if session.session_id in seen:
            refuse(index, f"session_id is used twice (also at index {seen[session.session_id]})")
            continue
        seen[session.session_id] = index
        if session.clinician_id not in clinicians:
            refuse(index, f"clinician {session.clinician_id!r} is not known for this practice")
            continue
        if session.slot_type not in slot_types:
            refuse(index, f"slot type {session.slot_type!r} is not known for this practice")
            continue
        wall_start, wall_end = london_wall_time(session.start), london_wall_time(session.end)
        if wall_start.date() < body.from_ or wall_end > window_end:
            refuse(index, f"the session is outside the rota's window [{body.from_}, {body.to})")
            continue
        if len(planned) + (wall_end - wall_start) // timedelta(minutes=session.slot_minutes) > MAX_SLOTS_PER_ROTA:
            refuse(index, f"the rota would have more than {MAX_SLOTS_PER_ROTA} slots; send it in smaller windows")
            break
        try:
            session_slots = plan_session(ods_code, session)
        except RotaError as exc:
            refuse(index, str(exc))
            continue
        planned.extend(session_slots)
        spans[session.clinician_id].append((session_slots[0].start, session_slots[-1].end, index))

    for intervals in spans.values():
        intervals.sort()
        latest_end, latest_index = intervals[0][1], intervals[0][2]
        for start, end, index in intervals[1:]:
            if start < latest_end:
                refuse(index, f"overlaps session {body.sessions[latest_index].session_id!r} of the same clinician")
            if end > latest_end:
                latest_end, latest_index = end, index
    errors.sort(key=lambda e: e["index"])
    return planned, errors


async def replace(session: AsyncSession, principal: Principal, ods_code: str, body: RotaIn, *, now: datetime,
                  max_weeks: int) -> dict[str, int]:
    ods_code = ods_code.upper()
    ensure_acts_for(principal, ods_code)
    if await registry.get_practice(session, ods_code) is None:
        # Practices reach booking-svc through registry events; a brand-new one may take a moment.
        raise NotFound(f"Practice {ods_code} is not known to booking-svc (if it was just created, retry shortly).",
                       code="unknown_practice")
    _check_window(body.from_, body.to, max_weeks)
    clinicians = set(await registry.clinicians_of(session, ods_code))
    slot_types = {code for _ods, code in await registry.slot_types_of(session, [ods_code])}
    planned, errors = plan(ods_code, body, clinicians, slot_types)
    if errors:
        raise Unprocessable(f"{len(errors)} session(s) cannot be used; nothing was changed.", code="invalid_rota",
                            errors=errors)

    lo, hi = max(london_midnight(body.from_), now), london_midnight(body.to)
    wanted = {p.id: p for p in planned if p.start >= now}
    existing = {row.id: row.start_at for row in await slots.in_window(session, ods_code, lo, hi)} if lo < hi else {}
    created = [wanted[i] for i in wanted.keys() - existing.keys()]
    removed = existing.keys() - wanted.keys()

    await slots.insert_many(session, [
        {"id": p.id, "ods_code": ods_code, "session_id": p.session_id, "clinician_id": p.clinician_id,
         "slot_type": p.slot_type, "start_at": p.start, "end_at": p.end, "status": FREE}
        for p in sorted(created, key=lambda p: (p.start, p.id))])
    await slots.delete_many(session, removed)
    # After the delete: a booking that committed while the delete waited for its row is displaced too.
    displaced = await appointments.displace(session, principal, removed, now)

    counts = {"created": len(created), "removed": len(removed), "unchanged": len(wanted) - len(created),
              "displaced": displaced}
    days = {london_date(p.start) for p in created} | {london_date(existing[i]) for i in removed}
    await publish_availability(session, ods_code, days=days, now=now, taken=removed)
    await record_event(session, SlotsPublished(ods_code=ods_code, from_date=body.from_, to_date=body.to, **counts),
                       subject_key=ods_code)
    await record_audit(session, BookingAuditRecorded, principal, action="rota.replace", target_kind="rota",
                       target_id=f"{ods_code}:{body.from_}:{body.to}", on_behalf_of=ods_code,
                       detail=", ".join(f"{k} {v}" for k, v in counts.items()))
    return counts


def _check_window(start: date, end: date, max_weeks: int) -> None:
    if end <= start:
        raise Unprocessable("`to` must be after `from`.", code="invalid_window")
    if end - start > timedelta(weeks=max_weeks):
        raise Unprocessable(f"A rota covers at most {max_weeks} weeks.", code="invalid_window")
