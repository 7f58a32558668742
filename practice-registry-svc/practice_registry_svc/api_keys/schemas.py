from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class ApiKeyIssued(BaseModel):
    key_id: str
    key: str = Field(description="The key itself. It is shown this once and cannot be recovered.")
    ods_code: str
    created_at: datetime


class ApiKeyOut(BaseModel):
    key_id: str
    ods_code: str
    created_at: datetime
    created_by: str
    revoked_at: datetime | None


class VerifyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(max_length=512)


class VerifiedKey(BaseModel):
    key_id: str
    ods_code: str
    practice_status: str
