from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class BookIn(BaseModel):
    slot_id: str = Field(min_length=1, max_length=64)
    hold_id: str | None = Field(default=None, max_length=64)
    # Checked by the service, so a bad number gets its own problem code (invalid_nhs_number).
    nhs_number: str = Field(max_length=32)
    reason: str | None = Field(default=None, max_length=1000)


class CancelIn(BaseModel):
    reason: str | None = Field(default=None, max_length=1000)


class RescheduleIn(BaseModel):
    slot_id: str = Field(min_length=1, max_length=64)
    hold_id: str | None = Field(default=None, max_length=64)


class StatusIn(BaseModel):
    status: Literal["arrived", "completed", "did_not_attend"]


class ClinicianOut(BaseModel):
    id: str
    name: str | None = None
    role: str | None = None
    gender: str | None = None


class AppointmentSlotOut(BaseModel):
    id: str
    start: str
    end: str
    clinician: ClinicianOut
    slot_type: str
    channel: str


class AppointmentOut(BaseModel):
    id: str
    status: str
    version: int
    booking_reference: str
    nhs_number: str
    practice: str
    registered_practice: str
    slot_id: str
    slot: AppointmentSlotOut
    reason: str | None = None
    cancel_reason: str | None = None
    rescheduled_from: str | None = None
    rescheduled_to: str | None = None
    booked_by: str
    created_at: str
    updated_at: str


class AppointmentPage(BaseModel):
    items: list[AppointmentOut]
    next_cursor: str | None = None
