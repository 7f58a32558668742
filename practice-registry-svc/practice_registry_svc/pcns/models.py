from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, String
from sqlalchemy.orm import Mapped, mapped_column

from practice_registry_svc.db import Base


class Pcn(Base):
    """A Primary Care Network: neighbouring practices that may share hub capacity."""

    __tablename__ = "pcns"

    code: Mapped[str] = mapped_column(String(20), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
