from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, DateTime, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from practice_registry_svc.db import Base


class Patient(Base):
    """A registered patient. The NHS number is the key: a patient is registered at one practice at a time."""

    __tablename__ = "patients"
    __table_args__ = (Index("ix_patients_family_key_birth_date", "family_key", "birth_date"),)

    nhs_number: Mapped[str] = mapped_column(String(10), primary_key=True)
    ods_code: Mapped[str] = mapped_column(String(6), ForeignKey("practices.ods_code"), index=True)
    family: Mapped[str] = mapped_column(String(100))
    given: Mapped[str] = mapped_column(String(100))
    birth_date: Mapped[date] = mapped_column(Date)
    gender: Mapped[str | None] = mapped_column(String(10))
    postcode: Mapped[str | None] = mapped_column(String(10))
    phone: Mapped[str | None] = mapped_column(String(30))
    # Search keys: what an agent types on a call rarely matches the spelling on record exactly.
    family_key: Mapped[str] = mapped_column(String(100))
    given_key: Mapped[str] = mapped_column(String(100))
    postcode_key: Mapped[str | None] = mapped_column(String(10))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
