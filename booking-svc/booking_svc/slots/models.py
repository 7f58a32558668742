"""Slots: bookable intervals made from rota sessions. A hold lives on its slot (one row to update atomically);
a hold whose `hold_expires_at` has passed counts as absent in every query and conditional update."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from booking_svc.db import Base

FREE, HELD, BOOKED = "free", "held", "booked"


class Slot(Base):
    __tablename__ = "slots"

    # uuid5 of what defines the slot (practice, session, times, clinician, type): the same rota gives the same ids.
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    ods_code: Mapped[str] = mapped_column(String(16))
    session_id: Mapped[str] = mapped_column(String(100))
    clinician_id: Mapped[str] = mapped_column(String(100))
    slot_type: Mapped[str] = mapped_column(String(50))
    start_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    end_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16), default=FREE)
    hold_id: Mapped[str | None] = mapped_column(String(32))
    held_by: Mapped[str | None] = mapped_column(String(200))
    hold_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        # Searches, rota replacement and day counts all read one practice's slots in a time range.
        Index("ix_slots_ods_code_start_at", "ods_code", "start_at"),
        # Earliest first across many practices: walked in order until the page is full, instead of sorting every
        # matching slot of every practice (a 20-practice search went from sorting ~100,000 rows to reading ~250).
        Index("ix_slots_start_at_id", "start_at", "id"),
        Index("ix_slots_hold_id", "hold_id"),
    )
