"""Booking rules. A slot is never booked twice: the slot row is claimed by a conditional UPDATE (free, or held
by this caller with this hold, or its hold expired), and a partial unique index allows one active appointment
per slot. Every change writes its event, an audit record and a feed entry in the same transaction, and bumps
the appointment's version. Lock order everywhere: slot rows, then appointment rows, then feed counters."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from booking_svc.appointments import repository
from booking_svc.appointments.models import (
    ARRIVED,
    BOOKED,
    CANCELLED,
    COMPLETED,
    DID_NOT_ATTEND,
    RESCHEDULED,
    Appointment,
)
from booking_svc.feed import service as feed
from booking_svc.registry import repository as registry
from booking_svc.registry.models import Clinician
from booking_svc.registry.repository import PracticeRow, SlotTypeRow
from booking_svc.slots import repository as slots
from booking_svc.slots.repository import ClinicianRow, SlotRow
from booking_svc.slots.service import (
    check_available,
    check_bookable,
    day_counts,
    explain_refusal,
    found_for_booking,
    free_slots_by_date,
    holder_key,
    london_day,
    publish_availability,
)
from services.audit import record_audit
from services.auth import Principal, ensure_acts_for
from services.contracts.audit import BookingAuditRecorded
from services.contracts.booking import (
    AppointmentBooked,
    AppointmentCancelled,
    AppointmentDisplaced,
    AppointmentRescheduled,
    AppointmentStatusChanged,
)
from services.errors import Conflict, DomainError, Forbidden, NotFound, PreconditionFailed, Unprocessable
from services.groupcommit import RUN_ALONE, Batch
from services.ids import new_id
from services.nhs import normalise_nhs_number
from services.outbox import record_event
from services.pagination import decode_time_cursor, encode_time_cursor
from services.timeutil import as_utc, london_date, london_iso

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # no I, L, O, U: nothing to mishear or misread
STATUS_CHANGES = {BOOKED: {ARRIVED, COMPLETED, DID_NOT_ATTEND}, ARRIVED: {COMPLETED}}


# ---------------------------------------------------------------------------------------------- reading

async def present(session: AsyncSession, appointments: Sequence[Any],
                  clinicians: dict[tuple[str, str], Clinician | ClinicianRow] | None = None) -> list[dict[str, Any]]:
    """The API's view of appointments (ORM objects or rows), with their clinicians from the local copy (looked up
    unless the caller has them already)."""
    if clinicians is None:
        clinicians = await registry.clinicians_by_key(session, {(a.ods_code, a.clinician_id) for a in appointments})
    return [view(a, clinicians.get((a.ods_code, a.clinician_id))) for a in appointments]


def view(a: Any, c: Clinician | ClinicianRow | None) -> dict[str, Any]:
    """One appointment as the API shows it, with its clinician (None if the local copy lacks it)."""
    return {
        "id": a.id, "status": a.status, "version": a.version, "booking_reference": a.booking_reference,
        "nhs_number": a.nhs_number, "practice": a.ods_code, "registered_practice": a.registered_ods_code,
        "slot_id": a.slot_id,
        "slot": {"id": a.slot_id, "start": london_iso(a.slot_start), "end": london_iso(a.slot_end),
                 "clinician": {"id": a.clinician_id, "name": c.name if c else None, "role": c.role if c else None,
                               "gender": c.gender if c else None},
                 "slot_type": a.slot_type, "channel": a.channel},
        "reason": a.reason, "cancel_reason": a.cancel_reason, "rescheduled_from": a.rescheduled_from,
        "rescheduled_to": a.rescheduled_to, "booked_by": a.booked_by,
        "created_at": london_iso(a.created_at), "updated_at": london_iso(a.updated_at),
    }


async def read(session: AsyncSession, principal: Principal, appointment_id: str) -> dict[str, Any]:
    appointment = await _load(session, appointment_id)
    _ensure_may_see(principal, appointment)
    await record_audit(session, BookingAuditRecorded, principal, action="appointment.read", target_kind="appointment",
                       target_id=appointment.id, on_behalf_of=appointment.ods_code, nhs_number=appointment.nhs_number)
    return (await present(session, [appointment]))[0]


async def search(session: AsyncSession, principal: Principal, *, nhs_number: str | None, practice: str | None,
                 start: datetime | None, end: datetime | None, status: str | None, limit: int,
                 cursor: str | None) -> dict[str, Any]:
    nhs = valid_nhs_number(nhs_number) if nhs_number else None
    practice = practice.strip().upper() if practice else None
    visible_to = None
    if principal.is_practice:
        if practice:
            ensure_acts_for(principal, practice)
        else:
            visible_to = principal.ods_code
    elif not (principal.is_staff or principal.role == "service"):
        raise Forbidden("Not allowed.", code="forbidden_role")
    after = decode_time_cursor(cursor)
    rows = await repository.search(session, nhs_number=nhs, practice=practice, visible_to=visible_to, start=start,
                                   end=end, status=status, after=after, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    items = await present(session, rows)
    await record_audit(session, BookingAuditRecorded, principal, action="appointment.search",
                       target_kind="patient" if nhs else "appointment", on_behalf_of=practice or principal.ods_code,
                       nhs_number=nhs, query_kind="nhs_number" if nhs else ("practice" if practice else "all"),
                       result_count=len(items))
    next_cursor = encode_time_cursor(rows[-1].slot_start, rows[-1].id) if more else None
    return {"items": items, "next_cursor": next_cursor}


# ---------------------------------------------------------------------------------------------- booking

async def book(session: AsyncSession, principal: Principal, *, slot_id: str, hold_id: str | None, nhs_number: str,
               reason: str | None, now: datetime) -> dict[str, Any]:
    nhs = valid_nhs_number(nhs_number)
    slot, rules, clinician, registered_at = await _check_slot(session, principal, slot_id, hold_id=hold_id,
                                                              nhs_number=nhs, now=now)
    appointment = _new_appointment(principal, slot, rules, nhs_number=nhs, reason=reason,
                                   registered_at=registered_at, now=now)
    known = {(slot.ods_code, slot.clinician_id): clinician} if clinician is not None else None
    out = (await present(session, [appointment], known))[0]
    day = london_date(slot.start_at)
    # The claim writes the feed entry too when it can; the counter lock then comes after the slot's, as always.
    free_that_day, fed = await _claim(session, principal, appointment, hold_id=hold_id, now=now, count_day=day,
                                      feed_entry=feed.entry(appointment.ods_code, "booked", out, now))
    if out["booking_reference"] != appointment.booking_reference:  # drawn again: the reply shows the one kept
        out = (await present(session, [appointment], known))[0]
    # The one event is also the audit record and the day's new free count (see _AppointmentEvent).
    await record_event(session, AppointmentBooked(**_event_fields(appointment, principal),
                                                  booking_reference=appointment.booking_reference,
                                                  free_slots_by_date={day.isoformat(): free_that_day}),
                       subject_key=appointment.ods_code)
    if not fed:
        await feed.append(session, appointment.ods_code, "booked", out, now)
    return out


@dataclass(frozen=True)
class BookingRequest:
    """One request to book, as the group commit carries it (booking_svc.main, services.groupcommit)."""

    principal: Principal
    slot_id: str
    hold_id: str | None
    nhs_number: str  # valid: see valid_nhs_number
    reason: str | None
    now: datetime
    correlation_id: str | None


def booking_key(request: BookingRequest) -> str:
    """A batch books a slot for one request; another request for it runs after (services.groupcommit)."""
    return request.slot_id


async def book_one(session: AsyncSession, request: BookingRequest) -> dict[str, Any]:
    """A booking on its own: `book` in a transaction of its own (SQLite, or what `book_batch` leaves)."""
    return await book(session, request.principal, slot_id=request.slot_id, hold_id=request.hold_id,
                      nhs_number=request.nhs_number, reason=request.reason, now=request.now)


async def book_batch(batch: Batch, requests: Sequence[BookingRequest]) -> list[Any]:
    """Book many requests' slots in one transaction (PostgreSQL; services.groupcommit commits it): the same rules,
    statements and lock order (slots, appointments, feed counters) as `book`, each statement sent once for the
    whole batch (one request per slot: see `booking_key`). Returns each request's appointment or refusal, or
    RUN_ALONE for what the one-request path does better: a patient registered elsewhere in a shared slot's PCN,
    and a claim that lost a race (the one-request path reads why)."""
    outcomes: list[Any] = [RUN_ALONE] * len(requests)
    found = await slots.slots_for_booking_each(batch, [(r.slot_id, r.nhs_number) for r in requests])
    ready: list[tuple[BookingRequest, int, Appointment, ClinicianRow | None]] = []
    for i, request in enumerate(requests):
        try:
            slot, practice, rules, clinician, registered_here = _bookable(
                request.principal, found.get(request.slot_id), hold_id=request.hold_id, now=request.now)
        except DomainError as refusal:
            outcomes[i] = refusal
            continue
        if registered_here:
            ready.append((request, i, _new_appointment(request.principal, slot, rules, nhs_number=request.nhs_number,
                                                       reason=request.reason, registered_at=practice.ods_code,
                                                       now=request.now), clinician))
    claimed = await slots.claim_each(batch, [
        {**slots.claim_params(a.slot_id, holder=holder_key(r.principal), hold_id=r.hold_id, now=r.now),
         **slots.free_in_day_params(a.ods_code, london_day(london_date(a.slot_start)), r.now)}
        for r, _i, a, _c in ready])
    ready = [entry for entry in ready if entry[2].slot_id in claimed]
    counts = day_counts(claimed, {a.slot_id: (a.ods_code, a.slot_start) for _r, _i, a, _c in ready})
    views: dict[str, dict[str, Any]] = {}
    # In practice order: the feed counters' locks, after every slot's, are taken in one order by every batch (a new
    # appointment's row, in between, waits on nobody: its slot's lock is already this batch's).
    pending = sorted(ready, key=lambda entry: (entry[2].ods_code, entry[2].slot_id))
    while pending:  # 32^8 references: a repeat is vanishingly rare, and the unique index catches it
        for _r, _i, a, c in pending:
            views[a.id] = view(a, c)
        written = await repository.insert_with_entry_each(batch, [
            (_columns(a), feed.entry(a.ods_code, "booked", views[a.id], r.now)) for r, _i, a, _c in pending])
        pending = [entry for entry, went_in in zip(pending, written, strict=True) if not went_in]
        for _r, _i, a, _c in pending:
            a.booking_reference = _booking_reference()
    for r, i, a, _c in ready:
        day = london_date(a.slot_start)
        batch.record_event(AppointmentBooked(**_event_fields(a, r.principal), booking_reference=a.booking_reference,
                                             free_slots_by_date={day.isoformat(): counts[(a.ods_code, day)]}),
                           subject_key=a.ods_code, correlation_id=r.correlation_id)
        outcomes[i] = views[a.id]
    return outcomes


async def cancel(session: AsyncSession, principal: Principal, appointment_id: str, *, reason: str | None,
                 if_match: str | None, now: datetime) -> dict[str, Any]:
    appointment = await _load_for_change(session, principal, appointment_id, if_match=if_match, now=now)
    await slots.free(session, appointment.slot_id)
    appointment.status, appointment.cancel_reason, appointment.updated_at = CANCELLED, reason, now
    await _flush(session)
    out = (await present(session, [appointment]))[0]
    free = await free_slots_by_date(session, appointment.ods_code, [london_date(appointment.slot_start)], now)
    await record_event(session, AppointmentCancelled(**_event_fields(appointment, principal), reason=reason,
                                                     free_slots_by_date=free),
                       subject_key=appointment.ods_code)
    await feed.append(session, appointment.ods_code, "cancelled", out, now)
    return out


async def reschedule(session: AsyncSession, principal: Principal, appointment_id: str, *, slot_id: str,
                     hold_id: str | None, if_match: str | None, now: datetime) -> dict[str, Any]:
    """Secure the new slot first and only then free the old one; any refusal rolls the whole change back."""
    old = await _load_for_change(session, principal, appointment_id, if_match=if_match, now=now)
    slot, rules, _clinician, registered_at = await _check_slot(session, principal, slot_id, hold_id=hold_id,
                                                               nhs_number=old.nhs_number, now=now)
    new = _new_appointment(principal, slot, rules, nhs_number=old.nhs_number, reason=old.reason,
                           registered_at=registered_at, now=now, rescheduled_from=old.id)
    await _claim(session, principal, new, hold_id=hold_id, now=now)
    await slots.free(session, old.slot_id)
    old.status, old.rescheduled_to, old.updated_at = RESCHEDULED, new.id, now
    await _flush(session)
    new_out, old_out = await present(session, [new, old])
    same_practice = new.ods_code == old.ods_code
    days = [london_date(new.slot_start), *([london_date(old.slot_start)] if same_practice else [])]
    await record_event(session, AppointmentRescheduled(
        **_event_fields(new, principal), previous_appointment_id=old.id, previous_slot_id=old.slot_id,
        previous_slot_start=as_utc(old.slot_start), previous_ods_code=old.ods_code,
        free_slots_by_date=await free_slots_by_date(session, new.ods_code, days, now)), subject_key=new.ods_code)
    if not same_practice:
        await publish_availability(session, old.ods_code, days=[london_date(old.slot_start)], now=now,
                                   freed=[old.slot_id])
    for ods in sorted({new.ods_code, old.ods_code}):
        await feed.append(session, ods, "rescheduled", new_out, now, previous_appointment_id=old.id,
                          previous_appointment=old_out)
    return new_out


async def change_status(session: AsyncSession, principal: Principal, appointment_id: str, *, status: str,
                        if_match: str | None, now: datetime) -> dict[str, Any]:
    appointment = await _load(session, appointment_id)
    ensure_acts_for(principal, appointment.ods_code)
    check_if_match(if_match, appointment.version)
    if status not in STATUS_CHANGES.get(appointment.status, ()):
        raise Conflict(f"An appointment that is {appointment.status} cannot become {status}.",
                       code="invalid_transition")
    appointment.status, appointment.updated_at = status, now
    await _flush(session)
    out = (await present(session, [appointment]))[0]
    await record_event(session, AppointmentStatusChanged(**_event_fields(appointment, principal)),
                       subject_key=appointment.ods_code)
    await feed.append(session, appointment.ods_code, "status_changed", out, now)
    return out


async def displace(session: AsyncSession, principal: Principal, slot_ids: Iterable[str], now: datetime) -> int:
    """The slots are gone (rota change): their appointments become displaced and someone must ring the patient."""
    displaced = await repository.displace_on_slots(session, slot_ids, now)
    for out, row in zip(await present(session, displaced), displaced):
        await record_event(session, AppointmentDisplaced(**_event_fields(row, principal)), subject_key=row.ods_code)
        await feed.append(session, row.ods_code, "displaced", out, now)
    return len(displaced)


# ---------------------------------------------------------------------------------------------- rules

def valid_nhs_number(value: str) -> str:
    try:
        if not value.isascii():  # str.isdigit() also accepts other scripts' digits
            raise ValueError("an NHS number is 10 digits")
        return normalise_nhs_number(value)
    except ValueError as exc:
        raise Unprocessable(f"Not a valid NHS number: {exc}.", code="invalid_nhs_number") from exc


def check_if_match(if_match: str | None, version: int) -> None:
    if if_match is None:
        return
    tags = [tag.strip() for tag in if_match.split(",")]
    if "*" in tags or any(tag.removeprefix("W/").strip('"') == str(version) for tag in tags):
        return
    raise PreconditionFailed("The appointment has changed since you read it; read it again.",
                             code="stale_version", current_version=version)


async def _check_slot(session: AsyncSession, principal: Principal, slot_id: str, *, hold_id: str | None,
                      nhs_number: str, now: datetime) -> tuple[SlotRow, SlotTypeRow, ClinicianRow | None, str]:
    """Check the rules on the slot as read; returns it, its type, its clinician and where the patient is
    registered. The conditional UPDATE in `_claim` is the real guard."""
    found = await slots.get_slot_for_booking(session, slot_id, nhs_number)
    slot, practice, rules, clinician, registered_here = _bookable(principal, found, hold_id=hold_id, now=now)
    registered_at = (practice.ods_code if registered_here
                     else await _registered_in_pcn(session, nhs_number, practice, rules))
    return slot, rules, clinician, registered_at


def _bookable(principal: Principal, found: tuple | None, *, hold_id: str | None,
              now: datetime) -> tuple[SlotRow, PracticeRow, SlotTypeRow, ClinicianRow | None, bool]:
    """The rules on a slot as read (with its practice, rules, clinician, and whether the patient is registered at
    its practice), or the refusal they give."""
    slot, practice, rules, clinician, registered_here = found_for_booking(principal, found)
    check_available(slot, holder=holder_key(principal), hold_id=hold_id, now=now)
    check_bookable(slot, practice, rules, now)
    assert practice is not None and rules is not None  # check_bookable refused otherwise
    return slot, practice, rules, clinician, registered_here


async def _registered_in_pcn(session: AsyncSession, nhs_number: str, practice: PracticeRow,
                             rules: SlotTypeRow) -> str:
    """For a patient not registered at the slot's own practice: the partner practice in the same PCN they are
    registered at, if the slot is shared with the PCN."""
    if rules.shared_with_pcn and practice.pcn:
        registered = await registry.registered_practices(session, nhs_number)
        partners = {p.ods_code for p in await registry.pcn_members(session, [practice.pcn])}
        if shared := sorted(registered & partners):
            return shared[0]
    raise Conflict("The patient is not registered at this practice (or, for a shared slot, in its PCN).",
                   code="not_registered")


def _new_appointment(principal: Principal, slot: SlotRow, rules: SlotTypeRow, *, nhs_number: str, reason: str | None,
                     registered_at: str, now: datetime, rescheduled_from: str | None = None) -> Appointment:
    """The appointment to insert, as a detached object (not in the unit of work: `_claim` inserts it)."""
    return Appointment(
        id=new_id(), booking_reference=_booking_reference(), status=BOOKED, version=1,
        ods_code=slot.ods_code, registered_ods_code=registered_at, nhs_number=nhs_number, reason=reason,
        slot_id=slot.id, slot_start=as_utc(slot.start_at), slot_end=as_utc(slot.end_at),
        clinician_id=slot.clinician_id, slot_type=slot.slot_type, channel=rules.channel,
        cancel_reason=None, rescheduled_from=rescheduled_from, rescheduled_to=None, booked_by=principal.subject,
        booked_by_role=principal.role, created_at=now, updated_at=now)


async def _claim(session: AsyncSession, principal: Principal, appointment: Appointment, *, hold_id: str | None,
                 now: datetime, count_day: date | None = None,
                 feed_entry: dict[str, Any] | None = None) -> tuple[int | None, bool]:
    """Claim the appointment's slot and insert it (Core). Returns, with `count_day`, that London day's free slots
    after the claim, and whether `feed_entry` was written (if not, the caller appends it)."""
    holder = holder_key(principal)
    values = _columns(appointment)
    try:
        booked = await repository.book(session, values, holder=holder, hold_id=hold_id, now=now,
                                       day=london_day(count_day) if count_day else None, feed_entry=feed_entry)
        if booked is None:
            raise await explain_refusal(session, appointment.slot_id, holder=holder, hold_id=hold_id, now=now)
        inserted, free_that_day, fed = booked
        while not inserted:  # 32^8 references: a repeat is vanishingly rare, and the unique index catches it
            values["booking_reference"] = appointment.booking_reference = _booking_reference()
            inserted = await repository.insert_new(session, values)
    except IntegrityError as exc:
        # Only reachable if the conditional UPDATE were bypassed: the unique index is the last line.
        raise Conflict("This slot has been booked.", code="slot_taken") from exc
    return free_that_day, fed


def _columns(appointment: Appointment) -> dict[str, Any]:
    return {column.key: getattr(appointment, column.key) for column in Appointment.__table__.c}


def _booking_reference() -> str:
    return "".join(secrets.choice(CROCKFORD) for _ in range(8))


async def _flush(session: AsyncSession) -> None:
    try:
        await session.flush()
    except IntegrityError as exc:
        # Only reachable if the conditional UPDATE were bypassed: the unique index is the last line.
        raise Conflict("This slot has been booked.", code="slot_taken") from exc
    except StaleDataError as exc:
        raise PreconditionFailed("The appointment changed while this request ran; read it again.",
                                 code="stale_version") from exc


async def _load(session: AsyncSession, appointment_id: str) -> Appointment:
    appointment = await repository.get(session, appointment_id)
    if appointment is None:
        raise NotFound("There is no such appointment.", code="appointment_not_found")
    return appointment


async def _load_for_change(session: AsyncSession, principal: Principal, appointment_id: str, *,
                           if_match: str | None, now: datetime) -> Appointment:
    appointment = await _load(session, appointment_id)
    ensure_acts_for(principal, appointment.ods_code)
    check_if_match(if_match, appointment.version)
    if appointment.status != BOOKED:
        raise Conflict(f"The appointment is {appointment.status}.", code="appointment_not_active")
    if as_utc(appointment.slot_start) <= now:
        raise Conflict("Only future appointments can be cancelled or moved.", code="appointment_in_past")
    return appointment


def _ensure_may_see(principal: Principal, appointment: Appointment) -> None:
    if principal.is_practice and principal.ods_code not in (appointment.ods_code, appointment.registered_ods_code):
        raise Forbidden("This API key belongs to another practice.", code="other_practice")


def _event_fields(appointment: Any, principal: Principal) -> dict[str, Any]:
    return {"appointment_id": appointment.id, "ods_code": appointment.ods_code, "slot_id": appointment.slot_id,
            "nhs_number": appointment.nhs_number, "slot_start": as_utc(appointment.slot_start),
            "slot_end": as_utc(appointment.slot_end), "clinician_id": appointment.clinician_id,
            "slot_type": appointment.slot_type, "channel": appointment.channel, "status": appointment.status,
            "version": appointment.version, "actor": principal.subject, "actor_role": principal.role}
