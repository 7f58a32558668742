"""The audit trail: every service publishes audit events; this service keeps them. A change to an appointment is
its own audit record: booking-svc's appointment events say who, in what role, for which practice and when."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from agent_desk_svc.audit import repository
from services.contracts.audit import _AuditRecorded
from services.contracts.booking import (AppointmentBooked, AppointmentCancelled, AppointmentDisplaced,
                                        AppointmentRescheduled, _AppointmentEvent)
from services.events import Envelope
from services.inbox import Batched
from services.timeutil import as_utc


async def _store_audit_records(session: AsyncSession, items: list[tuple[Envelope, _AuditRecorded]]) -> None:
    """Store each record once (its id is the event's): one insert that skips the records already kept."""
    records = {str(envelope.id): (envelope, data) for envelope, data in items}
    await repository.add_new(session, [_record(record_id, *record) for record_id, record in records.items()])


async def _store_appointment_changes(session: AsyncSession, items: list[tuple[Envelope, _AppointmentEvent]]) -> None:
    records = {str(envelope.id): _change_record(envelope, data) for envelope, data in items}  # each event once
    await repository.add_new(session, list(records.values()))


on_audit_recorded = Batched(_store_audit_records)
on_appointment_changed = Batched(_store_appointment_changes)

_CHANGE_ACTIONS = {AppointmentBooked: "appointment.book", AppointmentCancelled: "appointment.cancel",
                   AppointmentRescheduled: "appointment.reschedule", AppointmentDisplaced: "appointment.displace"}


def _change_record(envelope: Envelope, data: _AppointmentEvent) -> dict[str, Any]:
    """The audit record of an appointment change (a status change is `appointment.<status>`)."""
    detail = None
    if isinstance(data, AppointmentCancelled):
        detail = data.reason
    elif isinstance(data, AppointmentRescheduled):
        detail = f"from {data.previous_appointment_id}"
    elif isinstance(data, AppointmentDisplaced):
        detail = "slot removed by a rota change"
    return {"id": str(envelope.id), "service": envelope.producer[:64], "actor": data.actor[:100],
            "role": data.actor_role[:20],
            "on_behalf_of": _clip(data.ods_code, 20),
            "action": _CHANGE_ACTIONS.get(type(data), f"appointment.{data.status}")[:64],
            "target_kind": "appointment", "target_id": _clip(data.appointment_id, 100),
            "nhs_number": _digits(data.nhs_number), "query_kind": None, "result_count": None, "detail": detail,
            "at": as_utc(envelope.occurred_at)}


def _record(record_id: str, envelope: Envelope, data: _AuditRecorded) -> dict[str, Any]:
    return {"id": record_id, "service": envelope.producer[:64], "actor": data.actor[:100], "role": data.role[:20],
            "on_behalf_of": _clip(data.on_behalf_of, 20), "action": data.action[:64],
            "target_kind": data.target_kind[:64], "target_id": _clip(data.target_id, 100),
            "nhs_number": _digits(data.nhs_number), "query_kind": _clip(data.query_kind, 64),
            "result_count": data.result_count, "detail": data.detail, "at": as_utc(data.at)}


def _clip(value: str | None, size: int) -> str | None:
    # A producer's overlong value must not make the event unstorable (it would be retried forever).
    return value[:size] if value else None


def _digits(value: str | None) -> str | None:
    """Stored without spaces so a search finds it however the producer spelled it."""
    if not value:
        return None
    digits = "".join(ch for ch in value if ch.isdigit())
    return digits[:10] or None
