from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import String, and_, bindparam, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from agent_desk_svc.agents.models import Agent
from agent_desk_svc.calls.models import Call
from services.db import DriverStatement, execute_write, select_rows
from services.groupcommit import Batch

# Built once: every call start and wrap-up runs these, as plain statements (no objects to load and flush).
_CALLS = Call.__table__
_INSERT = insert(_CALLS)
# The call and its agent, both locked, in one round trip; `agent_state` is the agent's state.
_LOCK_WITH_AGENT_STATE = (select(*_CALLS.c, Agent.state.label("agent_state"))
                          .join(Agent, Agent.username == _CALLS.c.agent)
                          .where(_CALLS.c.id == bindparam("p_call_id")).with_for_update())
CLOSING_COLUMNS = ("closed_at", "handle_seconds", "disposition", "notes", "appointment_id", "nhs_number", "ods_code",
                   "closed_by")
_CLOSE = (update(_CALLS).where(_CALLS.c.id == bindparam("p_call_id"))
          .values({name: bindparam(f"p_{name}") for name in CLOSING_COLUMNS}))
_OPEN_CALL_FOR = select(Call).where(Call.agent == bindparam("p_agent"), Call.closed_at.is_(None))


async def insert_call(session: AsyncSession, values: Mapping[str, Any]) -> None:
    """Raises IntegrityError if the agent has an open call already (the open-calls-per-agent index)."""
    await execute_write(session, _INSERT, dict(values))


async def lock_with_agent_state(session: AsyncSession, call_id: str) -> Mapping[str, Any] | None:
    """The call's columns and `agent_state`, the call and its agent locked until the transaction ends."""
    rows = await select_rows(session, _LOCK_WITH_AGENT_STATE, {"p_call_id": call_id})
    return rows[0]._mapping if rows else None


async def close_call(session: AsyncSession, call_id: str, values: Mapping[str, Any]) -> None:
    await execute_write(session, _CLOSE,
                        {"p_call_id": call_id, **{f"p_{name}": values[name] for name in CLOSING_COLUMNS}})


# ---------------------------------------------------------------------------------------------- batches
# For group-committed batches of call starts and wrap-ups (services.groupcommit). A call's change and its agent's
# new state go in one statement (a data-modifying WITH): a round trip less per batch, each of which waits for a
# turn of a busy event loop. p_state NULL leaves the agent's state as it is; the agent is already locked.
_AGENT_STATE = (update(Agent.__table__)
                .where(Agent.__table__.c.username == bindparam("p_agent"),
                       bindparam("p_state", type_=String).is_not(None))
                .values(state=bindparam("p_state"), state_since=bindparam("p_since")))
_START_EACH = DriverStatement(_AGENT_STATE.add_cte(
    insert(_CALLS).values({c.name: bindparam(c.name) for c in _CALLS.c}).returning(_CALLS.c.id).cte("started")))
_LOCK_WITH_AGENT_STATE_EACH = DriverStatement(_LOCK_WITH_AGENT_STATE)
_CLOSE_EACH = DriverStatement(_AGENT_STATE.add_cte(_CLOSE.returning(_CALLS.c.id).cte("closed")))


async def start_call_each(batch: Batch, calls: Sequence[tuple[Mapping[str, Any], str | None]]) -> None:
    """`insert_call` for each (call, its agent's new state or None), with the agent's state set as of the call's
    start."""
    await _START_EACH.execute_each(batch.driver, batch.dialect, [
        {**call, "p_agent": call["agent"], "p_state": state, "p_since": call["started_at"]} for call, state in calls])


async def lock_with_agent_state_each(batch: Batch, calls: Sequence[tuple[str, str]]) -> dict[str, Mapping[str, Any]]:
    """`lock_with_agent_state` for each (call id, the agent it is expected to be), in agent order (the order call
    starts lock agents in); by call id, those that exist."""
    ordered = sorted(calls, key=lambda pair: (pair[1], pair[0]))
    rows = await _LOCK_WITH_AGENT_STATE_EACH.fetch_each(batch.driver, batch.dialect,
                                                        [{"p_call_id": call_id} for call_id, _agent in ordered])
    return {row["id"]: dict(row.items()) for row in rows}


async def close_call_each(batch: Batch, calls: Sequence[tuple[Mapping[str, Any], str | None]]) -> None:
    """`close_call` for each (call with its closing values and `id`, its agent's new state or None), with the
    agent's state set as of the call's close."""
    await _CLOSE_EACH.execute_each(batch.driver, batch.dialect, [
        {"p_call_id": call["id"], **{f"p_{name}": call[name] for name in CLOSING_COLUMNS},
         "p_agent": call["agent"], "p_state": state, "p_since": call["closed_at"]} for call, state in calls])


async def open_call_for(session: AsyncSession, agent: str) -> Call | None:
    return (await session.execute(_OPEN_CALL_FOR, {"p_agent": agent})).scalar_one_or_none()


async def listing(session: AsyncSession, *, agent: str | None, is_open: bool | None,
                  before: tuple[datetime, str] | None, limit: int) -> Sequence[Mapping[str, Any]]:
    """Newest first, each call's columns."""
    query = select(*_CALLS.c).order_by(Call.started_at.desc(), Call.id.desc()).limit(limit)
    if agent is not None:
        query = query.where(Call.agent == agent)
    if is_open is True:
        query = query.where(Call.closed_at.is_(None))
    elif is_open is False:
        query = query.where(Call.closed_at.is_not(None))
    if before is not None:
        at, call_id = before
        query = query.where(or_(Call.started_at < at, and_(Call.started_at == at, Call.id < call_id)))
    return [row._mapping for row in await select_rows(session, query)]


async def figures_since(session: AsyncSession, since: datetime) -> tuple[int, float | None]:
    """Calls started since `since`, and the mean handle time of those closed since then."""
    started = await session.scalar(select(func.count()).select_from(Call).where(Call.started_at >= since))
    mean = await session.scalar(select(func.avg(Call.handle_seconds))
                                .where(Call.closed_at >= since, Call.handle_seconds.is_not(None)))
    return int(started), (round(float(mean), 1) if mean is not None else None)
