from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from agent_desk_svc.db import Base


class AuditRecord(Base):
    """One audited action from any service (kept here from the services' audit events)."""

    __tablename__ = "audit_records"
    __table_args__ = (
        Index("ix_audit_records_at_id", "at", "id"),
        Index("ix_audit_records_actor_at", "actor", "at"),
        Index("ix_audit_records_nhs_number_at", "nhs_number", "at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # the event id
    service: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(20))
    on_behalf_of: Mapped[str | None] = mapped_column(String(20), nullable=True)
    action: Mapped[str] = mapped_column(String(64))
    target_kind: Mapped[str] = mapped_column(String(64))
    target_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    nhs_number: Mapped[str | None] = mapped_column(String(10), nullable=True)
    query_kind: Mapped[str | None] = mapped_column(String(64), nullable=True)
    result_count: Mapped[int | None] = mapped_column(Integer, nullable=True)
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
