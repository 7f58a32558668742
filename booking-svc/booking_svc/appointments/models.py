"""Appointments keep a copy of their slot's details: a displaced appointment outlives its slot."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from booking_svc.db import Base

BOOKED, CANCELLED, RESCHEDULED, DISPLACED = "booked", "cancelled", "rescheduled", "displaced"
ARRIVED, COMPLETED, DID_NOT_ATTEND = "arrived", "completed", "did_not_attend"
# An active appointment occupies its slot; at most one per slot, enforced by the database.
ACTIVE = (BOOKED, ARRIVED, COMPLETED, DID_NOT_ATTEND)
_ACTIVE_SQL = text("status IN ('booked', 'arrived', 'completed', 'did_not_attend')")


class Appointment(Base):
    __tablename__ = "appointments"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    booking_reference: Mapped[str] = mapped_column(String(8), unique=True)
    status: Mapped[str] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(Integer)
    ods_code: Mapped[str] = mapped_column(String(16))  # the slot's practice
    registered_ods_code: Mapped[str] = mapped_column(String(16))  # where the patient is registered
    nhs_number: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str | None] = mapped_column(Text)
    slot_id: Mapped[str] = mapped_column(String(32))
    slot_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    slot_end: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    clinician_id: Mapped[str] = mapped_column(String(100))
    slot_type: Mapped[str] = mapped_column(String(50))
    channel: Mapped[str] = mapped_column(String(16))
    cancel_reason: Mapped[str | None] = mapped_column(Text)
    rescheduled_from: Mapped[str | None] = mapped_column(String(32))
    rescheduled_to: Mapped[str | None] = mapped_column(String(32))
    booked_by: Mapped[str] = mapped_column(String(200))
    booked_by_role: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    # Optimistic concurrency: every ORM update is `WHERE version = <read>`, and bumps it (If-Match, races).
    __mapper_args__ = {"version_id_col": version}

    __table_args__ = (
        Index("uq_appointments_active_slot", "slot_id", unique=True,
              sqlite_where=_ACTIVE_SQL, postgresql_where=_ACTIVE_SQL),
        Index("ix_appointments_nhs_number_slot_start", "nhs_number", "slot_start"),
        Index("ix_appointments_ods_code_slot_start", "ods_code", "slot_start"),
        Index("ix_appointments_registered_ods_code_slot_start", "registered_ods_code", "slot_start"),
    )
