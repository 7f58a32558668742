from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from agent_desk_svc.audit.models import AuditRecord


async def existing_ids(session: AsyncSession, record_ids: Sequence[str]) -> set[str]:
    if not record_ids:
        return set()
    return set((await session.execute(select(AuditRecord.id).where(AuditRecord.id.in_(record_ids)))).scalars())


async def add(session: AsyncSession, records: Sequence[Mapping[str, Any]]) -> None:
    if records:
        await session.execute(insert(AuditRecord.__table__), list(records))


async def search(session: AsyncSession, *, actor: str | None, nhs_number: str | None, since: datetime | None,
                 until: datetime | None, before: tuple[datetime, str] | None, limit: int) -> Sequence[AuditRecord]:
    """Newest first."""
    query = select(AuditRecord).order_by(AuditRecord.at.desc(), AuditRecord.id.desc()).limit(limit)
    if actor is not None:
        query = query.where(AuditRecord.actor == actor)
    if nhs_number is not None:
        query = query.where(AuditRecord.nhs_number == nhs_number)
    if since is not None:
        query = query.where(AuditRecord.at >= since)
    if until is not None:
        query = query.where(AuditRecord.at < until)
    if before is not None:
        at, record_id = before
        query = query.where(or_(AuditRecord.at < at, and_(AuditRecord.at == at, AuditRecord.id < record_id)))
    return (await session.execute(query)).scalars().all()
