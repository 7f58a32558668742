from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from practice_registry_svc.practices.schemas import Name, PcnCode, PracticeSummary


class PcnCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: PcnCode
    name: Name


class PcnOut(BaseModel):
    code: str
    name: str
    created_at: datetime


class PcnWithMembers(PcnOut):
    practices: list[PracticeSummary]
