from __future__ import annotations

from fastapi import Request
from sqlalchemy import event

from booking_svc.dependencies import Now
from booking_svc.rotas import service
from booking_svc.rotas.schemas import RotaIn, RotaResult
from services.app import DbSession, service_router
from services.auth import AdminOrPractice

router = service_router(prefix="/api/v1/rotas", tags=["rotas"])


@router.put("/{ods_code}", response_model=RotaResult)
async def replace_rota(ods_code: str, body: RotaIn, request: Request, session: DbSession,
                       principal: AdminOrPractice, now: Now) -> dict:
    """Replace the practice's rota for [from, to) (London dates). 404 `unknown_practice` until booking-svc has
    learnt of the practice from registry events; 422 `invalid_rota` lists every bad session and why."""
    # The slots under embargo may change with the rota: this process counts them afresh once it has committed.
    event.listen(session.sync_session, "after_commit", lambda _s: request.app.state.embargoed_counts.clear(),
                 once=True)
    return await service.replace(session, principal, ods_code, body, now=now,
                                 max_weeks=request.app.state.settings.rota_max_weeks)
