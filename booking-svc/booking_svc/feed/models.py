"""A practice's feed is numbered by its own counter row. The writing transaction increments the counter
(UPDATE ... RETURNING), which locks the row until commit: feed writers of one practice are serialised, so the
sequence order is the commit order and a reader that has seen entry n never misses a later-committing n-1
(an autoincrement id cannot promise that on PostgreSQL)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, String
from sqlalchemy.orm import Mapped, mapped_column

from booking_svc.db import Base


class FeedCounter(Base):
    __tablename__ = "feed_counters"

    ods_code: Mapped[str] = mapped_column(String(16), primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)


class FeedEntry(Base):
    __tablename__ = "feed_entries"

    ods_code: Mapped[str] = mapped_column(String(16), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(32))
    appointment_id: Mapped[str] = mapped_column(String(32))
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
