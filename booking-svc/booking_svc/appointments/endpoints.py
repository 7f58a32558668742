from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Header, Query, Request, Response

from booking_svc.appointments import service
from booking_svc.appointments.schemas import AppointmentOut, AppointmentPage, BookIn, CancelIn, RescheduleIn, StatusIn
from booking_svc.dependencies import Now
from booking_svc.slots.service import parse_time_bound
from services.app import DbSession, GroupCommitted, WritesOnRead, service_router
from services.auth import AdminOrPractice, StaffOrPractice
from services.logging import request_id_var
from services.pagination import Limit, clamp_limit

router = service_router(prefix="/api/v1/appointments", tags=["appointments"])
IfMatch = Annotated[str | None, Header(alias="If-Match", max_length=200)]


def _with_etag(response: Response, appointment: dict) -> dict:
    response.headers["ETag"] = f'"{appointment["version"]}"'
    return appointment


@router.post("", status_code=201, response_model=AppointmentOut, dependencies=[GroupCommitted])
async def book(body: BookIn, request: Request, response: Response, principal: StaffOrPractice, now: Now) -> dict:
    """Book a slot for a registered patient. 409 `slot_taken`, `slot_held`, `embargoed`, `outside_booking_window`,
    `not_registered`, `practice_suspended`, `not_bookable_by_centre`; 422 `invalid_nhs_number`."""
    booking = service.BookingRequest(principal, body.slot_id, body.hold_id, service.valid_nhs_number(body.nhs_number),
                                     body.reason, now, request_id_var.get())
    # Committed with the other bookings arriving meanwhile (booking_svc.main), answered once that commit is done.
    return _with_etag(response, await request.app.state.bookings.submit(booking))


@router.get("", response_model=AppointmentPage, dependencies=[WritesOnRead])
async def list_appointments(
    session: DbSession,
    principal: StaffOrPractice,
    nhs_number: Annotated[str | None, Query(max_length=32)] = None,
    practice: Annotated[str | None, Query(max_length=16)] = None,
    from_: Annotated[str | None, Query(alias="from", max_length=40)] = None,
    to: Annotated[str | None, Query(max_length=40)] = None,
    status: Literal["booked", "cancelled", "rescheduled", "displaced", "arrived", "completed",
                    "did_not_attend"] | None = None,
    limit: Limit = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> dict:
    """Appointments by slot time (audited). A practice key sees its own practice's book and its own patients."""
    return await service.search(session, principal, nhs_number=nhs_number, practice=practice,
                                start=parse_time_bound(from_, name="from"),
                                end=parse_time_bound(to, name="to", end=True), status=status,
                                limit=clamp_limit(limit), cursor=cursor)


@router.get("/{appointment_id}", response_model=AppointmentOut, dependencies=[WritesOnRead])
async def read(appointment_id: str, response: Response, session: DbSession, principal: StaffOrPractice) -> dict:
    return _with_etag(response, await service.read(session, principal, appointment_id))


@router.post("/{appointment_id}/cancel", response_model=AppointmentOut)
async def cancel(appointment_id: str, body: CancelIn, response: Response, session: DbSession,
                 principal: StaffOrPractice, now: Now, if_match: IfMatch = None) -> dict:
    """Cancel a future appointment; the slot is free again. With `If-Match`, 412 `stale_version` if it changed."""
    return _with_etag(response, await service.cancel(session, principal, appointment_id, reason=body.reason,
                                                     if_match=if_match, now=now))


@router.post("/{appointment_id}/reschedule", status_code=201, response_model=AppointmentOut)
async def reschedule(appointment_id: str, body: RescheduleIn, response: Response, session: DbSession,
                     principal: StaffOrPractice, now: Now, if_match: IfMatch = None) -> dict:
    """Move a future appointment to another slot: answers the new appointment; the old one becomes
    `rescheduled`. The new slot is secured before the old is freed, in one transaction."""
    return _with_etag(response, await service.reschedule(session, principal, appointment_id, slot_id=body.slot_id,
                                                         hold_id=body.hold_id, if_match=if_match, now=now))


@router.post("/{appointment_id}/status", response_model=AppointmentOut)
async def change_status(appointment_id: str, body: StatusIn, response: Response, session: DbSession,
                        principal: AdminOrPractice, now: Now, if_match: IfMatch = None) -> dict:
    return _with_etag(response, await service.change_status(session, principal, appointment_id, status=body.status,
                                                            if_match=if_match, now=now))
