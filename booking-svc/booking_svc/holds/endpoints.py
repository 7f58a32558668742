from __future__ import annotations

from fastapi import Request, Response

from booking_svc.dependencies import Now
from booking_svc.holds import service
from booking_svc.holds.schemas import HoldIn, HoldOut
from services.app import DbSession, GroupCommitted, service_router
from services.auth import StaffOrPractice
from services.logging import request_id_var

router = service_router(prefix="/api/v1/holds", tags=["holds"])


@router.post("", status_code=201, response_model=HoldOut, dependencies=[GroupCommitted])
async def place_hold(body: HoldIn, request: Request, principal: StaffOrPractice, now: Now) -> dict:
    # Committed with the other holds arriving meanwhile (booking_svc.main), answered once that commit is done.
    return await request.app.state.holds.submit(service.HoldRequest(
        principal, body.slot_id, now, request.app.state.settings.hold_seconds, request_id_var.get()))


@router.delete("/{hold_id}", status_code=204)
async def release_hold(hold_id: str, session: DbSession, principal: StaffOrPractice, now: Now) -> Response:
    await service.release(session, principal, hold_id, now=now)
    return Response(status_code=204)
