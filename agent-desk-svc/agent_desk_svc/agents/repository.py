from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import bindparam, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from agent_desk_svc.agents.models import Agent, SignInFailure
from agent_desk_svc.calls.models import Call
from services.db import DriverStatement, execute_write, select_rows
from services.groupcommit import Batch


# Built once: every call start and wrap-up, state change and staff check reads an agent.
_GET = select(Agent).where(Agent.username == bindparam("p_username"))
_GET_FOR_UPDATE = _GET.with_for_update()


async def get(session: AsyncSession, username: str, *, for_update: bool = False) -> Agent | None:
    query = _GET_FOR_UPDATE if for_update else _GET
    return (await session.execute(query, {"p_username": username})).scalar_one_or_none()


# A call's start reads and changes three columns of the agent: plain statements, no object to load and flush.
_LOCK_STATE = (select(Agent.username, Agent.active, Agent.state)
               .where(Agent.username == bindparam("p_username")).with_for_update())
_SET_STATE = (update(Agent.__table__).where(Agent.__table__.c.username == bindparam("p_username"))
              .values(state=bindparam("p_state"), state_since=bindparam("p_since")))


async def lock_state(session: AsyncSession, username: str) -> Any | None:
    """(username, active, state) of the agent, locked until the transaction ends; None if there is no such agent."""
    rows = await select_rows(session, _LOCK_STATE, {"p_username": username})
    return rows[0] if rows else None


async def set_state(session: AsyncSession, username: str, state: str, since: datetime) -> None:
    await execute_write(session, _SET_STATE, {"p_username": username, "p_state": state, "p_since": since})


# ---------------------------------------------------------------------------------------------- batches
# For a group-committed batch of call starts (services.groupcommit): every agent in one round trip. Whether the
# agent has an open call is read under the agent's lock, which every call start takes first, so it cannot change
# before the batch commits (one call start on its own lets the open-calls index refuse instead).
_LOCK_STATE_EACH = DriverStatement(
    select(Agent.username, Agent.active, Agent.state,
           exists().where(Call.agent == Agent.username, Call.closed_at.is_(None)).label("has_open_call"))
    .where(Agent.username == bindparam("p_username")).with_for_update(of=Agent))


class AgentLock(NamedTuple):
    username: str
    active: bool
    state: str
    has_open_call: bool


async def lock_state_each(batch: Batch, usernames: Sequence[str]) -> dict[str, AgentLock]:
    """Each agent that exists, by username, each locked until the batch commits; taken in username order (as
    calls.repository.lock_with_agent_state_each takes them)."""
    rows = await _LOCK_STATE_EACH.fetch_each(batch.driver, batch.dialect,
                                             [{"p_username": u} for u in sorted(set(usernames))])
    return {row[0]: AgentLock(*row) for row in rows}


async def listing(session: AsyncSession, *, after: str | None, limit: int, state: str | None = None,
                  role: str | None = None, active: bool | None = None) -> Sequence[Agent]:
    query = select(Agent).order_by(Agent.username).limit(limit)
    if after is not None:
        query = query.where(Agent.username > after)
    if state is not None:
        query = query.where(Agent.state == state)
    if role is not None:
        query = query.where(Agent.role == role)
    if active is not None:
        query = query.where(Agent.active.is_(active))
    return (await session.execute(query)).scalars().all()


async def count_active_admins(session: AsyncSession) -> int:
    query = select(func.count()).select_from(Agent).where(Agent.role == "admin", Agent.active.is_(True))
    return int((await session.execute(query)).scalar_one())


async def count_by_state(session: AsyncSession) -> dict[str, int]:
    query = select(Agent.state, func.count()).where(Agent.active.is_(True)).group_by(Agent.state)
    return {state: int(n) for state, n in (await session.execute(query)).all()}


async def sign_in_failure(session: AsyncSession, username: str, *, for_update: bool = False) -> SignInFailure | None:
    query = select(SignInFailure).where(SignInFailure.username == username)
    if for_update:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()
