"""Calls: an agent picks up (on_call), then closes the call with a disposition (wrap_up)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from agent_desk_svc.agents import repository as agents_repository
from agent_desk_svc.agents.service import MANAGERS, move_to_state_of
from agent_desk_svc.agents.state import TransitionRefused, handle_seconds, state_for_call_close, state_for_call_start
from agent_desk_svc.calls import repository
from agent_desk_svc.calls.schemas import CallClose, CallStart
from services.audit import record_audit
from services.auth import Principal
from services.contracts.audit import DeskAuditRecorded
from services.contracts.desk import CallStarted, CallWrappedUp
from services.errors import Conflict, Forbidden, NotFound
from services.logging import get_logger
from services.outbox import record_event
from services.timeutil import as_utc, utcnow

log = get_logger(__name__)


async def start_call(session: AsyncSession, principal: Principal, body: CallStart) -> dict[str, Any]:
    agent = await agents_repository.lock_state(session, principal.subject)
    if agent is None:
        raise NotFound("Calls are taken by staff with an agent account.", code="agent_not_found")
    if not agent.active:
        raise Conflict("The account is disabled.", code="agent_inactive")
    call = {"id": uuid.uuid4().hex, "agent": agent.username, "nhs_number": body.nhs_number, "ods_code": body.practice,
            "started_at": utcnow(), "closed_at": None, "disposition": None, "notes": None, "appointment_id": None,
            "handle_seconds": None, "closed_by": None}
    try:
        # The index of open calls per agent answers "is a call open?" (and a concurrent start): no lookup first.
        # Before the state check, so an agent with an open call is told that rather than that they are on a call.
        await repository.insert_call(session, call)
    except IntegrityError as exc:
        raise Conflict("Close the open call before starting another.", code="call_already_open") from exc
    try:
        new_state = state_for_call_start(agent.state)
    except TransitionRefused as refused:
        raise Conflict(refused.detail, code=refused.code) from refused
    await move_to_state_of(session, agent.username, agent.state, new_state)
    await record_event(session, CallStarted(call_id=call["id"], agent=agent.username, ods_code=call["ods_code"],
                                            started_at=call["started_at"]),
                       subject_key=call["ods_code"] or agent.username)
    log.info("call.started", call_id=call["id"], agent=agent.username)
    return call


async def close_call(session: AsyncSession, principal: Principal, call_id: str, body: CallClose) -> dict[str, Any]:
    found = await repository.lock_with_agent_state(session, call_id)
    if found is None:
        raise NotFound(f"No call {call_id}.", code="call_not_found")
    call = dict(found)
    agent_state = call.pop("agent_state")
    if call["agent"] != principal.subject and principal.role not in MANAGERS:
        raise Forbidden("Agents close their own calls only.", code="not_your_call")
    if call["closed_at"] is not None:
        raise Conflict("The call is already closed.", code="call_closed")
    closed_at = utcnow()
    call.update(
        closed_at=closed_at, handle_seconds=handle_seconds(as_utc(call["started_at"]), closed_at),
        disposition=body.disposition, notes=body.notes, appointment_id=body.appointment_id, closed_by=principal.subject,
        # The patient is usually identified after pick-up; a patient named at the start is kept.
        nhs_number=call["nhs_number"] or body.nhs_number, ods_code=call["ods_code"] or body.practice)
    await repository.close_call(session, call_id, call)
    if agent_state == "on_call":
        await move_to_state_of(session, call["agent"], agent_state, state_for_call_close(agent_state))
    await record_event(session, CallWrappedUp(call_id=call_id, agent=call["agent"], ods_code=call["ods_code"],
                                              disposition=body.disposition, handle_seconds=call["handle_seconds"],
                                              appointment_id=call["appointment_id"]),
                       subject_key=call["ods_code"] or call["agent"])
    log.info("call.wrapped_up", call_id=call_id, agent=call["agent"], disposition=body.disposition,
             handle_seconds=call["handle_seconds"])
    return call


async def list_calls(session: AsyncSession, principal: Principal, *, agent: str | None, is_open: bool | None,
                     before: tuple[datetime, str] | None, limit: int) -> Sequence[Mapping[str, Any]]:
    if principal.role not in MANAGERS:
        if agent is not None and agent.lower() != principal.subject:
            raise Forbidden("Agents see their own calls only.", code="not_your_calls")
        agent = principal.subject
    calls = await repository.listing(session, agent=agent.lower() if agent else None, is_open=is_open,
                                     before=before, limit=limit)
    # Calls carry NHS numbers: reading them is audited.
    await record_audit(session, DeskAuditRecorded, principal, action="call.list", target_kind="call",
                       query_kind="open" if is_open else "all", result_count=len(calls))
    return calls
