from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from practice_registry_svc.db import Base


class Practice(Base):
    __tablename__ = "practices"
    __table_args__ = (CheckConstraint("status IN ('active', 'suspended')", name="status"),)

    ods_code: Mapped[str] = mapped_column(String(6), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    pcn_code: Mapped[str | None] = mapped_column(String(20), ForeignKey("pcns.code"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="active")
    phone: Mapped[str | None] = mapped_column(String(40))
    address: Mapped[str | None] = mapped_column(Text)
    opening_hours: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    notes_for_agents: Mapped[str | None] = mapped_column(Text)
    # One counter per practice across every event about it (practice, clinicians, slot types): consumers keep
    # the newest state and ignore anything older that arrives late.
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    patients_synced_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
