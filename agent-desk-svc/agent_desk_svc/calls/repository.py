from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, bindparam, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from agent_desk_svc.calls.models import Call


# Built once: every call start and wrap-up runs these.
_GET = select(Call).where(Call.id == bindparam("p_call_id"))
_GET_FOR_UPDATE = _GET.with_for_update()
_OPEN_CALL_FOR = select(Call).where(Call.agent == bindparam("p_agent"), Call.closed_at.is_(None))


async def get(session: AsyncSession, call_id: str, *, for_update: bool = False) -> Call | None:
    query = _GET_FOR_UPDATE if for_update else _GET
    return (await session.execute(query, {"p_call_id": call_id})).scalar_one_or_none()


async def open_call_for(session: AsyncSession, agent: str) -> Call | None:
    return (await session.execute(_OPEN_CALL_FOR, {"p_agent": agent})).scalar_one_or_none()


async def listing(session: AsyncSession, *, agent: str | None, is_open: bool | None,
                  before: tuple[datetime, str] | None, limit: int) -> Sequence[Call]:
    """Newest first."""
    query = select(Call).order_by(Call.started_at.desc(), Call.id.desc()).limit(limit)
    if agent is not None:
        query = query.where(Call.agent == agent)
    if is_open is True:
        query = query.where(Call.closed_at.is_(None))
    elif is_open is False:
        query = query.where(Call.closed_at.is_not(None))
    if before is not None:
        at, call_id = before
        query = query.where(or_(Call.started_at < at, and_(Call.started_at == at, Call.id < call_id)))
    return (await session.execute(query)).scalars().all()


async def figures_since(session: AsyncSession, since: datetime) -> tuple[int, float | None]:
    """Calls started since `since`, and the mean handle time of those closed since then."""
    started = await session.scalar(select(func.count()).select_from(Call).where(Call.started_at >= since))
    mean = await session.scalar(select(func.avg(Call.handle_seconds))
                                .where(Call.closed_at >= since, Call.handle_seconds.is_not(None)))
    return int(started), (round(float(mean), 1) if mean is not None else None)
