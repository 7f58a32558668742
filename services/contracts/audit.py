"""Audit records every service publishes (patient lookups, appointment changes); agent-desk-svc keeps them."""

from __future__ import annotations

from datetime import datetime

from services.events import EventData


class _AuditRecorded(EventData):
    actor: str
    role: str
    on_behalf_of: str | None = None  # the practice the action was for
    action: str  # e.g. patient.lookup, appointment.book
    target_kind: str  # patient, appointment, ...
    target_id: str | None = None
    nhs_number: str | None = None
    query_kind: str | None = None
    result_count: int | None = None
    detail: str | None = None
    at: datetime


class RegistryAuditRecorded(_AuditRecorded):
    event_type = "registry.audit.recorded"


class BookingAuditRecorded(_AuditRecorded):
    event_type = "booking.audit.recorded"


class DeskAuditRecorded(_AuditRecorded):
    event_type = "desk.audit.recorded"


AUDIT_CONTRACTS = (RegistryAuditRecorded, BookingAuditRecorded, DeskAuditRecorded)
