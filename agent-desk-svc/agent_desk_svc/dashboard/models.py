from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, DateTime, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from agent_desk_svc.db import Base


class PracticeDayBookings(Base):
    """Bookings made per London day and practice, counted from booking events when they happen."""

    __tablename__ = "practice_day_bookings"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    ods_code: Mapped[str] = mapped_column(String(10), primary_key=True)
    booked: Mapped[int] = mapped_column(Integer, default=0)
    cancelled: Mapped[int] = mapped_column(Integer, default=0)
    rescheduled: Mapped[int] = mapped_column(Integer, default=0)


class PracticeDayFreeSlots(Base):
    """The latest free-slot count booking-svc reported for a practice's day."""

    __tablename__ = "practice_day_free_slots"

    ods_code: Mapped[str] = mapped_column(String(10), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    free_slots: Mapped[int] = mapped_column(Integer)
    as_of: Mapped[datetime] = mapped_column(DateTime(timezone=True))
