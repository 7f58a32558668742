"""Callback tasks: raised by staff, by a practice for its own patients, or by a displaced appointment; claimed,
tried and completed by agents."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from agent_desk_svc.agents.service import MANAGERS
from agent_desk_svc.callbacks import repository
from agent_desk_svc.callbacks.models import CallbackAttempt, CallbackTask
from agent_desk_svc.callbacks.schemas import (Attempt, AttemptOut, CallbackAction, CallbackCreate, CallbackDetail,
                                              CallbackOut, Claim, Complete, Release, is_overdue)
from services.audit import record_audit
from services.auth import Principal, ensure_acts_for
from services.contracts.audit import DeskAuditRecorded
from services.contracts.desk import CallbackCompleted, CallbackCreated
from services.errors import Conflict, NotFound
from services.ids import new_id
from services.logging import get_logger
from services.outbox import record_event
from services.timeutil import as_utc, utcnow

log = get_logger(__name__)


def present(task: CallbackTask, now: datetime) -> CallbackOut:
    out = CallbackOut.model_validate(task)
    out.overdue = is_overdue(task.status, as_utc(task.due_by) if task.due_by else None, now)
    return out


async def add_task(session: AsyncSession, *, ods_code: str, nhs_number: str, reason: str, source: str,
                   created_by: str, due_by: datetime | None, appointment_id: str | None = None) -> CallbackTask:
    task = CallbackTask(id=new_id(), ods_code=ods_code, nhs_number=nhs_number, reason=reason, source=source,
                        status="open", due_by=as_utc(due_by) if due_by else None, created_at=utcnow(),
                        created_by=created_by, appointment_id=appointment_id, attempts=0)
    session.add(task)
    await session.flush()
    await record_event(session, CallbackCreated(callback_id=task.id, ods_code=ods_code, source=source, reason=reason,
                                                due_by=task.due_by), subject_key=ods_code)
    log.info("callback.created", callback_id=task.id, ods_code=ods_code, source=source)
    return task


async def create(session: AsyncSession, principal: Principal, body: CallbackCreate) -> CallbackTask:
    ensure_acts_for(principal, body.ods_code)
    task = await add_task(session, ods_code=body.ods_code, nhs_number=body.nhs_number, reason=body.reason,
                          source="practice" if principal.is_practice else "staff", created_by=principal.subject,
                          due_by=body.due_by)
    await record_audit(session, DeskAuditRecorded, principal, action="callback.create", target_kind="callback",
                       target_id=task.id, on_behalf_of=body.ods_code, nhs_number=body.nhs_number)
    return task


async def list_tasks(session: AsyncSession, principal: Principal, *, status: str | None, overdue: bool,
                     ods_code: str | None, after: tuple[datetime, str] | None, limit: int) -> Sequence[CallbackTask]:
    now = utcnow()
    tasks = await repository.listing(session, status=status, overdue_at=now if overdue else None, ods_code=ods_code,
                                     after=after, limit=limit)
    await record_audit(session, DeskAuditRecorded, principal, action="callback.list", target_kind="callback",
                       on_behalf_of=ods_code, query_kind="overdue" if overdue else (status or "all"),
                       result_count=len(tasks))
    return tasks


async def detail(session: AsyncSession, principal: Principal, callback_id: str) -> CallbackDetail:
    task = await _get(session, callback_id)
    await record_audit(session, DeskAuditRecorded, principal, action="callback.read", target_kind="callback",
                       target_id=task.id, on_behalf_of=task.ods_code, nhs_number=task.nhs_number)
    return await _detail(session, task)


async def _detail(session: AsyncSession, task: CallbackTask) -> CallbackDetail:
    out = CallbackDetail.model_validate(present(task, utcnow()).model_dump())
    out.attempt_log = [AttemptOut.model_validate(a) for a in await repository.attempts(session, task.id)]
    return out


async def _get(session: AsyncSession, callback_id: str, *, for_update: bool = False) -> CallbackTask:
    task = await repository.get(session, callback_id, for_update=for_update)
    if task is None:
        raise NotFound(f"No callback task {callback_id}.", code="callback_not_found")
    return task


def _claimed_by_someone_else(task: CallbackTask, principal: Principal) -> bool:
    return task.status == "claimed" and task.claimed_by != principal.subject


async def act(session: AsyncSession, principal: Principal, callback_id: str, action: CallbackAction) -> CallbackDetail:
    task = await _get(session, callback_id, for_update=True)
    if task.status == "completed":
        raise Conflict("The callback task is already completed.", code="callback_completed")
    now = utcnow()
    if isinstance(action, Release):
        if _claimed_by_someone_else(task, principal) and principal.role not in MANAGERS:
            raise Conflict(f"The task is claimed by {task.claimed_by}.", code="already_claimed")
        task.status, task.claimed_by, task.claimed_at = "open", None, None
    elif _claimed_by_someone_else(task, principal):
        raise Conflict(f"The task is claimed by {task.claimed_by}.", code="already_claimed")
    elif isinstance(action, Claim):
        if task.status == "open":
            task.status, task.claimed_by, task.claimed_at = "claimed", principal.subject, now
    elif isinstance(action, Attempt):
        if task.status == "open":  # whoever rings the patient has the task
            task.status, task.claimed_by, task.claimed_at = "claimed", principal.subject, now
        task.attempts += 1
        task.last_attempt_at = now
        session.add(CallbackAttempt(callback_id=task.id, at=now, by=principal.subject, note=action.note))
    elif isinstance(action, Complete):
        task.status, task.completed_at, task.completed_by = "completed", now, principal.subject
        task.outcome = action.outcome
        await record_event(session, CallbackCompleted(callback_id=task.id, ods_code=task.ods_code,
                                                      outcome=action.outcome), subject_key=task.ods_code)
    await session.flush()
    log.info("callback.updated", callback_id=task.id, action=action.action, status=task.status, by=principal.subject)
    return await _detail(session, task)
