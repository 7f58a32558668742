"""Calls: an agent picks up (on_call), then closes the call with a disposition (wrap_up)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from agent_desk_svc.agents import repository as agents_repository
from agent_desk_svc.agents.service import MANAGERS, move_to_state_of, state_changed
from agent_desk_svc.agents.state import TransitionRefused, handle_seconds, state_for_call_close, state_for_call_start
from agent_desk_svc.calls import repository
from agent_desk_svc.calls.schemas import CallClose, CallStart
from services.audit import record_audit
from services.auth import Principal
from services.contracts.audit import DeskAuditRecorded
from services.contracts.desk import CallStarted, CallWrappedUp
from services.errors import Conflict, DomainError, Forbidden, NotFound
from services.groupcommit import RUN_ALONE, Batch
from services.ids import new_id
from services.logging import get_logger
from services.outbox import record_event
from services.timeutil import as_utc, utcnow

log = get_logger(__name__)


async def start_call(session: AsyncSession, principal: Principal, body: CallStart) -> dict[str, Any]:
    agent = await agents_repository.lock_state(session, principal.subject)
    _check_agent(agent)
    call = _new_call(agent.username, body)
    try:
        # The index of open calls per agent answers "is a call open?" (and a concurrent start): no lookup first.
        # Before the state check, so an agent with an open call is told that rather than that they are on a call.
        await repository.insert_call(session, call)
    except IntegrityError as exc:
        raise _already_open() from exc
    new_state = _state_for_start(agent.state)
    await move_to_state_of(session, agent.username, agent.state, new_state)
    await record_event(session, _started(call), subject_key=call["ods_code"] or agent.username)
    log.info("call.started", call_id=call["id"], agent=agent.username)
    return call


@dataclass(frozen=True)
class CallRequest:
    """A call start or wrap-up, as the group commit carries it (agent_desk_svc.main, services.groupcommit)."""

    principal: Principal
    body: CallStart | CallClose
    call_id: str | None  # the call a wrap-up closes
    correlation_id: str | None


def start_key(request: CallRequest) -> str:
    """A batch starts one call per agent; an agent's second start runs after (services.groupcommit)."""
    return request.principal.subject


def close_key(request: CallRequest) -> str | None:
    """A batch wraps a call up for one request; another request for it runs after (services.groupcommit)."""
    return request.call_id


async def start_one(session: AsyncSession, request: CallRequest) -> dict[str, Any]:
    """A call start on its own: `start_call` in a transaction of its own (SQLite, or what `start_batch` leaves)."""
    return await start_call(session, request.principal, request.body)


async def start_batch(batch: Batch, requests: Sequence[CallRequest]) -> list[Any]:
    """Start many agents' calls in one transaction (PostgreSQL; services.groupcommit commits it), with the rules of
    `start_call` (one start per agent: see `start_key`)."""
    outcomes: list[Any] = [RUN_ALONE] * len(requests)
    agents = await agents_repository.lock_state_each(batch, [r.principal.subject for r in requests])
    calls, states, now = [], [], utcnow()
    for i, request in enumerate(requests):
        username = request.principal.subject
        agent = agents.get(username)
        try:
            _check_agent(agent)
            if agent.has_open_call:
                raise _already_open()
            new_state = _state_for_start(agent.state)
        except DomainError as refusal:
            outcomes[i] = refusal
            continue
        call = outcomes[i] = _new_call(username, request.body, now)
        calls.append((call, request.correlation_id))
        if new_state != agent.state:
            states.append((username, agent.state, new_state))
    new_states = {username: state for username, _p, state in states}
    await repository.start_call_each(batch, [(call, new_states.get(call["agent"])) for call, _c in calls])
    correlation = {call["agent"]: correlation_id for call, correlation_id in calls}
    for username, previous, state in states:
        batch.record_event(state_changed(username, previous, state, now), subject_key=username,
                           correlation_id=correlation[username])
    for call, correlation_id in calls:
        batch.record_event(_started(call), subject_key=call["ods_code"] or call["agent"], correlation_id=correlation_id)
        log.info("call.started", call_id=call["id"], agent=call["agent"], request_id=correlation_id)
    return outcomes


def _already_open() -> Conflict:
    return Conflict("Close the open call before starting another.", code="call_already_open")


def _check_agent(agent: Any) -> None:
    if agent is None:
        raise NotFound("Calls are taken by staff with an agent account.", code="agent_not_found")
    if not agent.active:
        raise Conflict("The account is disabled.", code="agent_inactive")


def _state_for_start(current: str) -> str:
    try:
        return state_for_call_start(current)
    except TransitionRefused as refused:
        raise Conflict(refused.detail, code=refused.code) from refused


def _new_call(agent: str, body: CallStart, now: datetime | None = None) -> dict[str, Any]:
    return {"id": new_id(), "agent": agent, "nhs_number": body.nhs_number, "ods_code": body.practice,
            "started_at": now or utcnow(), "closed_at": None, "disposition": None, "notes": None,
            "appointment_id": None, "handle_seconds": None, "closed_by": None}


def _started(call: dict[str, Any]) -> CallStarted:
    return CallStarted(call_id=call["id"], agent=call["agent"], ods_code=call["ods_code"],
                       started_at=call["started_at"])


async def close_call(session: AsyncSession, principal: Principal, call_id: str, body: CallClose) -> dict[str, Any]:
    found = await repository.lock_with_agent_state(session, call_id)
    call, agent_state = _closing(principal, call_id, found, body, utcnow())
    await repository.close_call(session, call_id, call)
    if agent_state == "on_call":
        await move_to_state_of(session, call["agent"], agent_state, state_for_call_close(agent_state))
    await record_event(session, _wrapped_up(call), subject_key=call["ods_code"] or call["agent"])
    log.info("call.wrapped_up", call_id=call_id, agent=call["agent"], disposition=body.disposition,
             handle_seconds=call["handle_seconds"])
    return call


async def close_one(session: AsyncSession, request: CallRequest) -> dict[str, Any]:
    """A wrap-up on its own: `close_call` in a transaction of its own (SQLite, or what `close_batch` leaves)."""
    return await close_call(session, request.principal, request.call_id, request.body)


async def close_batch(batch: Batch, requests: Sequence[CallRequest]) -> list[Any]:
    """Close many calls in one transaction (PostgreSQL; services.groupcommit commits it), with the rules of
    `close_call` (one wrap-up per call: see `close_key`)."""
    outcomes: list[Any] = [RUN_ALONE] * len(requests)
    found = await repository.lock_with_agent_state_each(batch, [(r.call_id, r.principal.subject) for r in requests])
    closed, states, now = [], [], utcnow()
    for i, request in enumerate(requests):
        try:
            call, agent_state = _closing(request.principal, request.call_id, found.get(request.call_id), request.body,
                                         now)
        except DomainError as refusal:
            outcomes[i] = refusal
            continue
        outcomes[i] = call
        closed.append((call, request.correlation_id))
        if agent_state == "on_call":
            states.append((call["agent"], agent_state, state_for_call_close(agent_state), request.correlation_id))
    new_states = {username: state for username, _p, state, _c in states}
    await repository.close_call_each(batch, [(call, new_states.get(call["agent"])) for call, _c in closed])
    for username, previous, state, correlation_id in states:
        batch.record_event(state_changed(username, previous, state, now), subject_key=username,
                           correlation_id=correlation_id)
    for call, correlation_id in closed:
        batch.record_event(_wrapped_up(call), subject_key=call["ods_code"] or call["agent"],
                           correlation_id=correlation_id)
        log.info("call.wrapped_up", call_id=call["id"], agent=call["agent"], disposition=call["disposition"],
                 handle_seconds=call["handle_seconds"], request_id=correlation_id)
    return outcomes


def _closing(principal: Principal, call_id: str, found: Mapping[str, Any] | None, body: CallClose,
             closed_at: datetime) -> tuple[dict[str, Any], str]:
    """The call as it will be once closed, and its agent's state now; or the refusal."""
    if found is None:
        raise NotFound(f"No call {call_id}.", code="call_not_found")
    call = dict(found)
    agent_state = call.pop("agent_state")
    if call["agent"] != principal.subject and principal.role not in MANAGERS:
        raise Forbidden("Agents close their own calls only.", code="not_your_call")
    if call["closed_at"] is not None:
        raise Conflict("The call is already closed.", code="call_closed")
    call.update(
        closed_at=closed_at, handle_seconds=handle_seconds(as_utc(call["started_at"]), closed_at),
        disposition=body.disposition, notes=body.notes, appointment_id=body.appointment_id, closed_by=principal.subject,
        # The patient is usually identified after pick-up; a patient named at the start is kept.
        nhs_number=call["nhs_number"] or body.nhs_number, ods_code=call["ods_code"] or body.practice)
    return call, agent_state


def _wrapped_up(call: dict[str, Any]) -> CallWrappedUp:
    return CallWrappedUp(call_id=call["id"], agent=call["agent"], ods_code=call["ods_code"],
                         disposition=call["disposition"], handle_seconds=call["handle_seconds"],
                         appointment_id=call["appointment_id"])


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
