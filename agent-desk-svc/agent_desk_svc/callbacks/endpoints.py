from __future__ import annotations

from agent_desk_svc.callbacks import service
from agent_desk_svc.callbacks.schemas import (
    CallbackAction,
    CallbackCreate,
    CallbackDetail,
    CallbackOut,
    CallbackStatus,
)
from agent_desk_svc.fields import OdsCode
from services.app import DbSession, WritesOnRead, service_router
from services.auth import Staff, StaffOrPractice
from services.pagination import (
    Limit,
    Page,
    clamp_limit,
    decode_time_cursor,
    encode_time_cursor,
)
from services.timeutil import utcnow

router = service_router(prefix="/api/v1/callbacks", tags=["callbacks"])


@router.get("", response_model=Page[CallbackOut], dependencies=[WritesOnRead])
async def list_callbacks(session: DbSession, principal: Staff, status: CallbackStatus | None = None,
                         overdue: bool = False, practice: OdsCode | None = None, limit: Limit = None,
                         cursor: str | None = None) -> Page[CallbackOut]:
    size = clamp_limit(limit)
    tasks = await service.list_tasks(session, principal, status=status, overdue=overdue, ods_code=practice,
                                     after=decode_time_cursor(cursor), limit=size)
    now = utcnow()
    next_cursor = encode_time_cursor(tasks[-1].created_at, tasks[-1].id) if len(tasks) == size else None
    return Page[CallbackOut](items=[service.present(t, now) for t in tasks], next_cursor=next_cursor)


@router.post("", status_code=201, response_model=CallbackOut)
async def create_callback(session: DbSession, principal: StaffOrPractice, body: CallbackCreate) -> CallbackOut:
    return service.present(await service.create(session, principal, body), utcnow())


@router.get("/{callback_id}", response_model=CallbackDetail, dependencies=[WritesOnRead])
async def get_callback(session: DbSession, principal: Staff, callback_id: str) -> CallbackDetail:
    return await service.detail(session, principal, callback_id)


@router.patch("/{callback_id}", response_model=CallbackDetail)
async def update_callback(session: DbSession, principal: Staff, callback_id: str,
                          body: CallbackAction) -> CallbackDetail:
    return await service.act(session, principal, callback_id, body)
