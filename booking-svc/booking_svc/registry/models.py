"""The local copy of registry data. Rows are written only by the registry event consumers."""

from __future__ import annotations

from datetime import time

from sqlalchemy import Boolean, Integer, String, Time
from sqlalchemy.orm import Mapped, mapped_column

from booking_svc.db import Base

ACTIVE = "active"  # a practice's status while it takes bookings


class Practice(Base):
    __tablename__ = "practices"

    ods_code: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    pcn: Mapped[str | None] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(Integer)

    @property
    def is_active(self) -> bool:
        return self.status == ACTIVE


class RegistryVersion(Base):
    """The newest version applied per practice and list (clinicians, slot types), so an older event that
    arrives late is ignored. Kept apart from `practices` because a list may arrive before the practice."""

    __tablename__ = "registry_versions"

    ods_code: Mapped[str] = mapped_column(String(16), primary_key=True)
    aggregate: Mapped[str] = mapped_column(String(32), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)


class Clinician(Base):
    __tablename__ = "clinicians"

    ods_code: Mapped[str] = mapped_column(String(16), primary_key=True)
    clinician_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(64))
    gender: Mapped[str | None] = mapped_column(String(32))


class SlotType(Base):
    __tablename__ = "slot_types"

    ods_code: Mapped[str] = mapped_column(String(16), primary_key=True)
    code: Mapped[str] = mapped_column(String(50), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(16))
    bookable_by_centre: Mapped[bool] = mapped_column(Boolean)
    max_days_ahead: Mapped[int] = mapped_column(Integer)
    min_notice_minutes: Mapped[int] = mapped_column(Integer)
    release_days_before: Mapped[int | None] = mapped_column(Integer)
    release_at_time: Mapped[time | None] = mapped_column(Time)
    shared_with_pcn: Mapped[bool] = mapped_column(Boolean)


class Registration(Base):
    """A patient registered at a practice: all booking needs to check who may be booked where."""

    __tablename__ = "registrations"

    # NHS number first: "where is this patient registered?" is the question booking asks.
    nhs_number: Mapped[str] = mapped_column(String(10), primary_key=True)
    ods_code: Mapped[str] = mapped_column(String(16), primary_key=True)
