from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from agent_desk_svc.fields import OdsCode, TimeOut
from services.nhs import NhsNumber

Disposition = Literal["booked", "cancelled", "rescheduled", "advice_given", "redirected_999", "redirected_111",
                      "no_slot_callback", "not_registered", "abandoned", "red_flag_999"]


class CallStart(BaseModel):
    model_config = ConfigDict(extra="forbid")

    nhs_number: NhsNumber | None = None
    practice: OdsCode | None = None


class CallClose(BaseModel):
    model_config = ConfigDict(extra="forbid")

    disposition: Disposition
    notes: Annotated[str, StringConstraints(max_length=4000)] | None = None
    appointment_id: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    # Who the call turned out to be about, when that was not known at pick-up (the usual case at the desk).
    nhs_number: NhsNumber | None = None
    practice: OdsCode | None = None


class CallOut(BaseModel):
    id: str
    agent: str
    nhs_number: str | None
    practice: str | None = Field(validation_alias="ods_code")
    started_at: TimeOut
    closed_at: TimeOut | None
    open: bool
    disposition: Disposition | None
    notes: str | None
    appointment_id: str | None
    handle_seconds: float | None

    model_config = ConfigDict(from_attributes=True, populate_by_name=True)
