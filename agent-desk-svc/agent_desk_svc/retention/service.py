"""Retention: how long this service keeps what it holds about patients, and the purge that enforces it.

- Audit records (from every service): DESK_AUDIT_RETENTION_DAYS, default 2922 days (8 years), as long as the
  adult health records the trail may be needed to investigate (NHS Records Management Code of Practice 2021).
- Call notes and the caller's NHS number: DESK_CALL_NOTES_RETENTION_DAYS, default 730 days (2 years: the
  12 months a complaint may take to arrive, and time to investigate it). The call itself stays, without them,
  for statistics. Completed callback tasks, with their attempt notes, go after the same period.
- Delivered outbox and processed inbox rows (event payloads carry NHS numbers): DESK_EVENT_LOG_RETENTION_DAYS,
  default 30 days, always longer than JetStream keeps a message, so a redelivery is still recognised.

The purge never commits: the command (or a test) owns the transaction, so a failure changes nothing."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from agent_desk_svc.retention import repository
from agent_desk_svc.settings import Settings
from services import eventlog
from services.audit import record_audit
from services.auth import Principal
from services.contracts.audit import DeskAuditRecorded
from services.logging import get_logger

log = get_logger(__name__)

PURGE_PRINCIPAL = Principal(subject="retention-purge", role="service")


@dataclass(frozen=True)
class Cutoffs:
    audit_records: datetime
    call_notes: datetime
    event_log: datetime

    @classmethod
    def at(cls, now: datetime, settings: Settings) -> Cutoffs:
        return cls(audit_records=now - timedelta(days=settings.audit_retention_days),
                   call_notes=now - timedelta(days=settings.call_notes_retention_days),
                   event_log=now - timedelta(days=settings.event_log_retention_days))


@dataclass(frozen=True)
class PurgeCounts:
    audit_records_deleted: int
    calls_redacted: int
    callbacks_deleted: int
    outbox_events_deleted: int
    inbox_events_deleted: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


async def purge(session: AsyncSession, settings: Settings, now: datetime, *, dry_run: bool = False) -> PurgeCounts:
    """Remove (or, with dry_run, only count) what has outlived its retention period at `now`."""
    cut = Cutoffs.at(now, settings)
    if dry_run:
        return PurgeCounts(
            audit_records_deleted=await repository.count_audit_records(session, cut.audit_records),
            calls_redacted=await repository.count_calls_to_redact(session, cut.call_notes),
            callbacks_deleted=await repository.count_completed_callbacks(session, cut.call_notes),
            outbox_events_deleted=await eventlog.count_published_events(session, cut.event_log),
            inbox_events_deleted=await eventlog.count_processed_events(session, cut.event_log))
    counts = PurgeCounts(
        audit_records_deleted=await repository.delete_audit_records(session, cut.audit_records),
        calls_redacted=await repository.redact_calls(session, cut.call_notes),
        callbacks_deleted=await repository.delete_completed_callbacks(session, cut.call_notes),
        outbox_events_deleted=await eventlog.delete_published_events(session, cut.event_log),
        inbox_events_deleted=await eventlog.delete_processed_events(session, cut.event_log))
    # The purge is part of the trail too: when it ran and what it removed (counts only, never content).
    await record_audit(session, DeskAuditRecorded, PURGE_PRINCIPAL, action="retention.purge", target_kind="retention",
                       result_count=sum(counts.as_dict().values()),
                       detail=", ".join(f"{k}={v}" for k, v in counts.as_dict().items()))
    log.info("retention.purged", **counts.as_dict())
    return counts
