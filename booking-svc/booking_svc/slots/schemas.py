from __future__ import annotations

from pydantic import BaseModel


class SlotClinician(BaseModel):
    id: str
    name: str | None = None
    role: str | None = None
    gender: str | None = None


class SlotOut(BaseModel):
    id: str
    practice: str
    start: str
    end: str
    clinician: SlotClinician
    slot_type: str
    channel: str
    pcn_partner: bool = False


class Embargoed(BaseModel):
    count: int
    next_release_at: str | None = None


class SlotPage(BaseModel):
    items: list[SlotOut]
    next_cursor: str | None = None
    embargoed: Embargoed
