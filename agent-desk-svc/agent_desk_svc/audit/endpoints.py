from __future__ import annotations

from typing import Annotated

from fastapi import Query

from agent_desk_svc.audit import service
from agent_desk_svc.audit.schemas import AuditItem
from agent_desk_svc.fields import TimeIn
from services.app import DbSession, WritesOnRead, service_router
from services.auth import Principal, require_roles
from services.nhs import NhsNumber
from services.pagination import (
    Limit,
    Page,
    clamp_limit,
    decode_time_cursor,
    encode_time_cursor,
)

router = service_router(prefix="/api/v1/audit", tags=["audit"])

Manager = Annotated[Principal, require_roles("supervisor", "admin")]


@router.get("", response_model=Page[AuditItem], dependencies=[WritesOnRead])
async def search_audit(session: DbSession, principal: Manager,
                       actor: Annotated[str | None, Query(max_length=100)] = None,
                       nhs_number: NhsNumber | None = None,
                       since: Annotated[TimeIn | None, Query(alias="from")] = None,
                       until: Annotated[TimeIn | None, Query(alias="to")] = None,
                       limit: Limit = None, cursor: str | None = None) -> Page[AuditItem]:
    size = clamp_limit(limit)
    records = await service.search(session, principal, actor=actor, nhs_number=nhs_number, since=since, until=until,
                                   before=decode_time_cursor(cursor), limit=size)
    next_cursor = encode_time_cursor(records[-1].at, records[-1].id) if len(records) == size else None
    return Page[AuditItem](items=[AuditItem.model_validate(r) for r in records], next_cursor=next_cursor)
