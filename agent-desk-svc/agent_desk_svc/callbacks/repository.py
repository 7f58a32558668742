from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from agent_desk_svc.callbacks.models import CallbackAttempt, CallbackTask

OUTSTANDING = ("open", "claimed")


async def get(session: AsyncSession, callback_id: str, *, for_update: bool = False) -> CallbackTask | None:
    query = select(CallbackTask).where(CallbackTask.id == callback_id)
    if for_update:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def for_appointment(session: AsyncSession, appointment_id: str) -> CallbackTask | None:
    query = select(CallbackTask).where(CallbackTask.appointment_id == appointment_id)
    return (await session.execute(query)).scalar_one_or_none()


async def listing(session: AsyncSession, *, status: str | None, overdue_at: datetime | None, ods_code: str | None,
                  after: tuple[datetime, str] | None, limit: int) -> Sequence[CallbackTask]:
    """Oldest first: the queue is worked in the order tasks arrived."""
    query = select(CallbackTask).order_by(CallbackTask.created_at, CallbackTask.id).limit(limit)
    if status is not None:
        query = query.where(CallbackTask.status == status)
    if overdue_at is not None:
        query = query.where(CallbackTask.status.in_(OUTSTANDING), CallbackTask.due_by < overdue_at)
    if ods_code is not None:
        query = query.where(CallbackTask.ods_code == ods_code)
    if after is not None:
        at, callback_id = after
        query = query.where(or_(CallbackTask.created_at > at,
                                and_(CallbackTask.created_at == at, CallbackTask.id > callback_id)))
    return (await session.execute(query)).scalars().all()


async def attempts(session: AsyncSession, callback_id: str) -> Sequence[CallbackAttempt]:
    query = select(CallbackAttempt).where(CallbackAttempt.callback_id == callback_id).order_by(CallbackAttempt.id)
    return (await session.execute(query)).scalars().all()


async def outstanding_counts(session: AsyncSession, now: datetime) -> tuple[int, int]:
    """(open or claimed, of which overdue)."""
    outstanding = CallbackTask.status.in_(OUTSTANDING)
    total = (await session.execute(select(func.count()).select_from(CallbackTask).where(outstanding))).scalar_one()
    overdue = (await session.execute(select(func.count()).select_from(CallbackTask)
                                     .where(outstanding, CallbackTask.due_by < now))).scalar_one()
    return int(total), int(overdue)
