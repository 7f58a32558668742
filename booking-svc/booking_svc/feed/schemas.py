from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class FeedItem(BaseModel):
    cursor: str
    seq: int
    kind: str
    occurred_at: str
    appointment_id: str
    appointment: dict[str, Any]
    previous_appointment_id: str | None = None
    previous_appointment: dict[str, Any] | None = None


class FeedPage(BaseModel):
    items: list[FeedItem]
    next_cursor: str | None = None
    last_cursor: str
