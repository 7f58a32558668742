from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

MAX_SESSIONS = 20_000


class RotaSessionIn(BaseModel):
    session_id: str = Field(min_length=1, max_length=100)
    clinician_id: str = Field(min_length=1, max_length=100)
    slot_type: str = Field(min_length=1, max_length=50)
    # London wall time: without an offset it is read as London time; with one, converted to London time.
    start: datetime
    end: datetime
    slot_minutes: int = Field(ge=1, le=1440)


class RotaIn(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: date = Field(alias="from")
    to: date
    sessions: list[RotaSessionIn] = Field(max_length=MAX_SESSIONS)


class RotaResult(BaseModel):
    created: int
    removed: int
    unchanged: int
    displaced: int
