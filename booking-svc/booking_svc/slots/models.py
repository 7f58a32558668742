"""Slots: bookable intervals made from rota sessions. A hold lives on its slot (one row to update atomically);
a hold whose `hold_expires_at` has passed counts as absent in every query and conditional update."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from booking_svc.db import Base

FREE, HELD, BOOKED = "free", "held", "booked"

# The rows a slot search or a day's free count can want: a booked slot never can. Written as literal text, here and
# in the queries (booking_svc.slots.repository.OPEN), so that the database can prove a query needs only the
# partial indexes below, in a prepared statement's generic plan too (a bound parameter proves nothing).
OPEN_STATUSES_SQL = f"status IN ('{FREE}', '{HELD}')"


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
        # Rota replacement and the practice's own listings read every slot of a practice in a time range.
        Index("ix_slots_ods_code_start_at", "ods_code", "start_at"),
        # Searches and day counts read only slots that are not booked. At the rush the earliest slots go first, so
        # with every slot in the index a practice's search stepped over the morning's bookings before the first
        # free one (153 rows read and thrown away for a 20-slot page after a minute of a bench rush, and more as
        # the fortnight fills). Partial indexes leave booked slots out: the page's rows are the first ones read.
        # Without `id`: slots that start together (one per clinician) are few, and sorting them by id as they are
        # read costs less than an index ten times the size (22 MB against 2 MB for 200,000 slots).
        Index("ix_slots_open_ods_code_start_at", "ods_code", "start_at",
              postgresql_where=text(OPEN_STATUSES_SQL), sqlite_where=text(OPEN_STATUSES_SQL)),
        # Earliest first across many practices: walked in order until the page is full, instead of sorting every
        # matching slot of every practice (a 20-practice search went from sorting ~100,000 rows to reading ~250).
        Index("ix_slots_open_start_at", "start_at",
              postgresql_where=text(OPEN_STATUSES_SQL), sqlite_where=text(OPEN_STATUSES_SQL)),
        # A hold is found by its id; only held slots have one. Without the NULLs of every other slot the index holds
        # the few slots held at the moment, and publishing a rota or booking a slot adds nothing to it.
        Index("ix_slots_hold_id_set", "hold_id", postgresql_where=text("hold_id IS NOT NULL"),
              sqlite_where=text("hold_id IS NOT NULL")),
    )
