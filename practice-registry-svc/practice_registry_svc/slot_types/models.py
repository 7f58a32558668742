from __future__ import annotations

from sqlalchemy import Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from practice_registry_svc.db import Base


class SlotType(Base):
    """A practice-defined kind of slot and the rules the centre books it by."""

    __tablename__ = "slot_types"

    ods_code: Mapped[str] = mapped_column(String(6), ForeignKey("practices.ods_code"), primary_key=True)
    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(20))
    bookable_by_centre: Mapped[bool] = mapped_column(Boolean)
    max_days_ahead: Mapped[int] = mapped_column(Integer)
    min_notice_minutes: Mapped[int] = mapped_column(Integer)
    release_days_before: Mapped[int | None] = mapped_column(Integer)
    release_at_time: Mapped[str | None] = mapped_column(String(5))  # "HH:MM", Europe/London wall-clock time
    shared_with_pcn: Mapped[bool] = mapped_column(Boolean)
    position: Mapped[int] = mapped_column(Integer)
