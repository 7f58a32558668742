from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from agent_desk_svc.audit.models import AuditRecord
from services.db import upsert


async def add_new(session: AsyncSession, records: Sequence[Mapping[str, Any]]) -> None:
    """Records whose id is already kept are skipped: one INSERT ... ON CONFLICT (id) DO NOTHING, not a lookup
    first (an `id IN (...)` lookup cost PostgreSQL 400-530 us for two or three ids)."""
    if records:
        await upsert(session, AuditRecord.__table__, list(records), key=["id"])


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
