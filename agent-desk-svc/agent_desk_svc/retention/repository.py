"""The rows each retention rule reaches: counted for a dry run, removed or cleared for a real one."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Delete, Update, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from agent_desk_svc.audit.models import AuditRecord
from agent_desk_svc.callbacks.models import CallbackAttempt, CallbackTask
from agent_desk_svc.calls.models import Call


async def _count(session: AsyncSession, table, *where) -> int:  # noqa: ANN001 - a table or a mapped class
    return int(await session.scalar(select(func.count()).select_from(table).where(*where)) or 0)


async def _run(session: AsyncSession, statement: Delete | Update) -> int:
    return (await session.execute(statement.execution_options(synchronize_session=False))).rowcount


def _old_audit(cutoff: datetime) -> tuple:
    return (AuditRecord.at < cutoff,)


async def count_audit_records(session: AsyncSession, cutoff: datetime) -> int:
    return await _count(session, AuditRecord, *_old_audit(cutoff))


async def delete_audit_records(session: AsyncSession, cutoff: datetime) -> int:
    return await _run(session, delete(AuditRecord).where(*_old_audit(cutoff)))


def _calls_with_patient_details(cutoff: datetime) -> tuple:
    # Closed calls only: an open call is still being worked, however old.
    return (Call.closed_at.is_not(None), Call.started_at < cutoff,
            (Call.notes.is_not(None)) | (Call.nhs_number.is_not(None)))


async def count_calls_to_redact(session: AsyncSession, cutoff: datetime) -> int:
    return await _count(session, Call, *_calls_with_patient_details(cutoff))


async def redact_calls(session: AsyncSession, cutoff: datetime) -> int:
    return await _run(session, update(Call).where(*_calls_with_patient_details(cutoff))
                      .values(notes=None, nhs_number=None))


def _completed_callbacks(cutoff: datetime) -> tuple:
    return (CallbackTask.status == "completed", CallbackTask.completed_at < cutoff)


async def count_completed_callbacks(session: AsyncSession, cutoff: datetime) -> int:
    return await _count(session, CallbackTask, *_completed_callbacks(cutoff))


async def delete_completed_callbacks(session: AsyncSession, cutoff: datetime) -> int:
    old = select(CallbackTask.id).where(*_completed_callbacks(cutoff)).scalar_subquery()
    await _run(session, delete(CallbackAttempt).where(CallbackAttempt.callback_id.in_(old)))
    return await _run(session, delete(CallbackTask).where(*_completed_callbacks(cutoff)))
