from __future__ import annotations

from pydantic import BaseModel, Field


class HoldIn(BaseModel):
    slot_id: str = Field(min_length=1, max_length=64)


class HoldOut(BaseModel):
    hold_id: str
    slot_id: str
    expires_at: str
    expires_in_seconds: int
