"""A displaced appointment becomes an open callback task: someone must ring the patient to rebook."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from agent_desk_svc.callbacks import repository, service
from services.contracts.booking import AppointmentDisplaced
from services.events import Envelope
from services.timeutil import to_london


async def on_appointment_displaced(session: AsyncSession, envelope: Envelope, data: AppointmentDisplaced) -> None:
    if await repository.for_appointment(session, data.appointment_id) is not None:
        return
    when = to_london(data.slot_start)
    reason = (f"Appointment on {when:%a %d %b %Y} at {when:%H:%M} was removed by a rota change at the practice; "
              "offer the patient a new one.")
    # Due before the time the patient expects to be seen: after that they will turn up to nothing.
    await service.add_task(session, ods_code=data.ods_code, nhs_number=data.nhs_number, reason=reason,
                           source="displaced", created_by=envelope.producer, due_by=data.slot_start,
                           appointment_id=data.appointment_id)
