from __future__ import annotations

from agent_desk_svc.dashboard import service
from agent_desk_svc.dashboard.schemas import Dashboard
from services.app import DbSession, service_router
from services.auth import Staff

router = service_router(prefix="/api/v1/dashboard", tags=["dashboard"])


@router.get("", response_model=Dashboard)
async def get_dashboard(session: DbSession, _principal: Staff) -> Dashboard:
    return await service.dashboard(session)
