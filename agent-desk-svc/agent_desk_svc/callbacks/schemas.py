from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from agent_desk_svc.fields import OdsCode, TimeIn, TimeOut
from services.nhs import NhsNumber

CallbackStatus = Literal["open", "claimed", "completed"]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


class CallbackCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ods_code: OdsCode
    nhs_number: NhsNumber
    reason: Text
    due_by: TimeIn | None = None


class Claim(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: Literal["claim"]


class Release(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: Literal["release"]


class Attempt(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: Literal["attempt"]
    note: Text


class Complete(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: Literal["complete"]
    outcome: Text


CallbackAction = Annotated[Claim | Release | Attempt | Complete, Field(discriminator="action")]


class AttemptOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    at: TimeOut
    by: str
    note: str


class CallbackOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    ods_code: str
    nhs_number: str
    reason: str
    source: str
    status: CallbackStatus
    due_by: TimeOut | None
    overdue: bool = False
    created_at: TimeOut
    created_by: str
    appointment_id: str | None
    claimed_by: str | None
    claimed_at: TimeOut | None
    attempts: int
    last_attempt_at: TimeOut | None
    completed_at: TimeOut | None
    completed_by: str | None
    outcome: str | None


class CallbackDetail(CallbackOut):
    attempt_log: list[AttemptOut] = []


def is_overdue(status: str, due_by: datetime | None, now: datetime) -> bool:
    return status != "completed" and due_by is not None and due_by < now
