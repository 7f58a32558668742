from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from agent_desk_svc.audit import repository
from agent_desk_svc.audit.models import AuditRecord
from services.audit import record_audit
from services.auth import Principal
from services.contracts.audit import DeskAuditRecorded
from services.errors import Unprocessable
from services.timeutil import as_utc


async def search(session: AsyncSession, principal: Principal, *, actor: str | None, nhs_number: str | None,
                 since: datetime | None, until: datetime | None, before: tuple[datetime, str] | None,
                 limit: int) -> Sequence[AuditRecord]:
    if since is not None and until is not None and since >= until:
        raise Unprocessable("`from` must be before `to`.", code="invalid_range")
    records = await repository.search(session, actor=actor, nhs_number=nhs_number,
                                      since=as_utc(since) if since else None, until=as_utc(until) if until else None,
                                      before=before, limit=limit)
    # Searching the trail by patient is itself a read of patient data.
    await record_audit(session, DeskAuditRecorded, principal, action="audit.search", target_kind="audit",
                       nhs_number=nhs_number, query_kind="by_patient" if nhs_number else "by_filter",
                       result_count=len(records))
    return records
