from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Float, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from agent_desk_svc.db import Base


class Call(Base):
    """One phone call an agent handled, from pick-up to wrap-up."""

    __tablename__ = "calls"
    __table_args__ = (
        # At most one open call per agent, enforced by the database as well as by the rules.
        Index("uq_calls_open_per_agent", "agent", unique=True,
              sqlite_where=text("closed_at IS NULL"), postgresql_where=text("closed_at IS NULL")),
        Index("ix_calls_agent_started", "agent", "started_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    agent: Mapped[str] = mapped_column(String(64), ForeignKey("agents.username"))
    nhs_number: Mapped[str | None] = mapped_column(String(10), nullable=True)
    ods_code: Mapped[str | None] = mapped_column(String(10), nullable=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True, index=True)
    disposition: Mapped[str | None] = mapped_column(String(32), nullable=True)
    notes: Mapped[str | None] = mapped_column(Text, nullable=True)
    appointment_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    handle_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    closed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
