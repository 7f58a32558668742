from __future__ import annotations

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from practice_registry_svc.db import Base


class Clinician(Base):
    __tablename__ = "clinicians"

    ods_code: Mapped[str] = mapped_column(String(6), ForeignKey("practices.ods_code"), primary_key=True)
    clinician_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    gender: Mapped[str | None] = mapped_column(String(10))
    position: Mapped[int] = mapped_column(Integer)  # the order the practice sent them in
