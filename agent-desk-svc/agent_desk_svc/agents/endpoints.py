from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request

from agent_desk_svc.agents import service
from agent_desk_svc.agents.passwords import Passwords
from agent_desk_svc.agents.schemas import (AgentCreate, AgentOut, AgentPatch, StaffCheck, StaffStatus, StateChange,
                                          TokenOut, TokenRequest)
from agent_desk_svc.agents.state import AgentState
from services.app import DbSession, service_router
from services.auth import Principal, Staff, require_roles
from services.db import sqlite_write_intent
from services.errors import Forbidden
from services.pagination import Limit, Page, clamp_limit, decode_cursor, encode_cursor

Manager = Annotated[Principal, require_roles("supervisor", "admin")]

auth_router = service_router(prefix="/api/v1/auth", tags=["auth"])
router = service_router(prefix="/api/v1/agents", tags=["agents"])
# Called by the gateway directly, never through it (the gateway does not route /internal).
internal_router = service_router(prefix="/internal/v1/staff", include_in_schema=False)
Gateway = Annotated[Principal, require_roles("service")]


def _passwords(request: Request) -> Passwords:
    return request.app.state.passwords


@auth_router.post("/token", response_model=TokenOut)
async def issue_token(request: Request, body: TokenRequest) -> TokenOut:
    """Public: the gateway lets sign-in through without credentials."""
    return await service.sign_in(request.app.state.db, _passwords(request), request.app.state.settings,
                                 body.username, body.password)


@router.post("", status_code=201, response_model=AgentOut)
async def create_agent(request: Request, session: DbSession, principal: Manager, body: AgentCreate) -> AgentOut:
    return AgentOut.model_validate(await service.create_agent(session, _passwords(request), principal, body))


@router.get("", response_model=Page[AgentOut])
async def list_agents(session: DbSession, _principal: Manager, state: AgentState | None = None,
                      role: Annotated[str | None, Query(pattern="^(agent|supervisor|admin)$")] = None,
                      active: bool | None = None, limit: Limit = None, cursor: str | None = None) -> Page[AgentOut]:
    size = clamp_limit(limit)
    position = decode_cursor(cursor)
    after = str(position.get("username", "")) if position else None
    agents = await service.list_agents(session, after=after, limit=size, state=state, role=role, active=active)
    items = [AgentOut.model_validate(a) for a in agents]
    next_cursor = encode_cursor({"username": items[-1].username}) if len(items) == size else None
    return Page[AgentOut](items=items, next_cursor=next_cursor)


@router.get("/me", response_model=AgentOut)
async def me(session: DbSession, principal: Staff) -> AgentOut:
    return AgentOut.model_validate(await service.get_agent(session, principal.subject))


@router.get("/{username}", response_model=AgentOut)
async def get_agent(session: DbSession, principal: Staff, username: str) -> AgentOut:
    if username.lower() != principal.subject and principal.role not in service.MANAGERS:
        raise Forbidden("Agents see their own account only.", code="not_your_account")
    return AgentOut.model_validate(await service.get_agent(session, username))


@router.patch("/{username}", response_model=AgentOut)
async def update_agent(request: Request, session: DbSession, principal: Manager, username: str,
                       body: AgentPatch) -> AgentOut:
    agent = await service.update_agent(session, _passwords(request), principal, username, body)
    return AgentOut.model_validate(agent)


@router.put("/{username}/state", response_model=AgentOut)
async def change_state(session: DbSession, principal: Staff, username: str, body: StateChange) -> AgentOut:
    return AgentOut.model_validate(await service.change_state(session, principal, username, body.state))


@internal_router.post("/verify", response_model=StaffStatus)
async def verify_staff(session: DbSession, _caller: Gateway, body: StaffCheck) -> StaffStatus:
    sqlite_write_intent.set(False)  # a read, although a POST: never queue behind writers on SQLite
    agent = await service.check_staff(session, body.username, body.role)
    return StaffStatus(username=agent.username, role=agent.role, active=agent.active)  # type: ignore[arg-type]
