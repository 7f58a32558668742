from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import Query, Request

from agent_desk_svc.calls import service
from agent_desk_svc.calls.schemas import CallClose, CallOut, CallStart
from services.app import DbSession, GroupCommitted, WritesOnRead, service_router
from services.auth import Staff
from services.logging import request_id_var
from services.pagination import (
    Limit,
    Page,
    clamp_limit,
    decode_time_cursor,
    encode_time_cursor,
)

router = service_router(prefix="/api/v1/calls", tags=["calls"])


_SHOWN = ("id", "agent", "nhs_number", "ods_code", "started_at", "closed_at", "disposition", "notes", "appointment_id",
          "handle_seconds")


def _out(call: Mapping[str, Any]) -> CallOut:
    return CallOut.model_validate({**{c: call[c] for c in _SHOWN}, "open": call["closed_at"] is None})


# Call starts and wrap-ups are committed with the others arriving meanwhile (agent_desk_svc.main), and answered
# once that commit is done.
@router.post("", status_code=201, response_model=CallOut, dependencies=[GroupCommitted])
async def start_call(request: Request, principal: Staff, body: CallStart) -> CallOut:
    return _out(await request.app.state.call_starts.submit(
        service.CallRequest(principal, body, None, request_id_var.get())))


@router.patch("/{call_id}", response_model=CallOut, dependencies=[GroupCommitted])
async def close_call(request: Request, principal: Staff, call_id: str, body: CallClose) -> CallOut:
    return _out(await request.app.state.call_closes.submit(
        service.CallRequest(principal, body, call_id, request_id_var.get())))


@router.get("", response_model=Page[CallOut], dependencies=[WritesOnRead])
async def list_calls(session: DbSession, principal: Staff, agent: Annotated[str | None, Query(max_length=64)] = None,
                     open: bool | None = None, limit: Limit = None, cursor: str | None = None) -> Page[CallOut]:
    size = clamp_limit(limit)
    calls = await service.list_calls(session, principal, agent=agent, is_open=open, before=decode_time_cursor(cursor),
                                     limit=size)
    items = [_out(c) for c in calls]
    next_cursor = encode_time_cursor(calls[-1]["started_at"], calls[-1]["id"]) if len(calls) == size else None
    return Page[CallOut](items=items, next_cursor=next_cursor)
