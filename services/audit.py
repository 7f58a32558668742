"""Publishing an audit record: who did what, on whose behalf, to which target. It goes through the outbox in the
same transaction as the change (or the read) it records; agent-desk-svc keeps the trail."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.auth import Principal
from services.contracts.audit import _AuditRecorded
from services.outbox import record_event
from services.timeutil import utcnow


async def record_audit(session: AsyncSession, contract: type[_AuditRecorded], principal: Principal, *, action: str,
                       target_kind: str, target_id: str | None = None, on_behalf_of: str | None = None,
                       nhs_number: str | None = None, query_kind: str | None = None, result_count: int | None = None,
                       detail: str | None = None) -> None:
    event = audit_record(contract, principal, action=action, target_kind=target_kind, target_id=target_id,
                         on_behalf_of=on_behalf_of, nhs_number=nhs_number, query_kind=query_kind,
                         result_count=result_count, detail=detail)
    await record_event(session, event, subject_key=audit_subject(principal, on_behalf_of))


def audit_record(contract: type[_AuditRecorded], principal: Principal, *, action: str, target_kind: str,
                 target_id: str | None = None, on_behalf_of: str | None = None, nhs_number: str | None = None,
                 query_kind: str | None = None, result_count: int | None = None,
                 detail: str | None = None) -> _AuditRecorded:
    """The audit event `record_audit` records; a group-committed batch records it with its own Batch.record_event."""
    return contract(actor=principal.subject, role=principal.role, on_behalf_of=on_behalf_of or principal.ods_code,
                    action=action, target_kind=target_kind, target_id=target_id, nhs_number=nhs_number,
                    query_kind=query_kind, result_count=result_count, detail=detail, at=utcnow())


def audit_subject(principal: Principal, on_behalf_of: str | None) -> str:
    """The subject key of an audit event."""
    return on_behalf_of or principal.ods_code or principal.subject
