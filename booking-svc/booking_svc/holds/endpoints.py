from __future__ import annotations

from fastapi import Request, Response

from booking_svc.dependencies import Now
from booking_svc.holds import service
from booking_svc.holds.schemas import HoldIn, HoldOut
from services.app import DbSession, service_router
from services.auth import StaffOrPractice

router = service_router(prefix="/api/v1/holds", tags=["holds"])


@router.post("", status_code=201, response_model=HoldOut)
async def place_hold(body: HoldIn, request: Request, session: DbSession, principal: StaffOrPractice,
                     now: Now) -> dict:
    return await service.place(session, principal, body.slot_id, now=now,
                               hold_seconds=request.app.state.settings.hold_seconds)


@router.delete("/{hold_id}", status_code=204)
async def release_hold(hold_id: str, session: DbSession, principal: StaffOrPractice, now: Now) -> Response:
    await service.release(session, principal, hold_id, now=now)
    return Response(status_code=204)
