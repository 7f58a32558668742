from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from services.timeutil import to_london

# [0-9], not \d: \d also matches other scripts' digits (e.g. Arabic-Indic), which are no ODS code.
_ODS_RE = re.compile(r"^[A-Z][0-9]{5}$")
_PCN_RE = re.compile(r"^[A-Z0-9][A-Z0-9-]{1,19}$")


def normalise_ods_code(value: str) -> str:
    code = value.strip().upper()
    if not _ODS_RE.match(code):
        raise ValueError("an ODS code of a GP practice is a letter followed by five digits, e.g. A81001")
    return code


def normalise_pcn_code(value: str) -> str:
    code = value.strip().upper()
    if not _PCN_RE.match(code):
        raise ValueError("a PCN code is 2-20 letters, digits or hyphens, e.g. U12345 or PCN-NORTH")
    return code


OdsCode = Annotated[str, Field(max_length=20), AfterValidator(normalise_ods_code)]
PcnCode = Annotated[str, Field(max_length=40), AfterValidator(normalise_pcn_code)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Phone = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=40,
                                         pattern=r"^\+?[0-9][0-9 ()\-]*$")]
Address = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
Notes = Annotated[str, StringConstraints(strip_whitespace=True, max_length=4000)]
ClockTime = Annotated[str, StringConstraints(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
PracticeStatus = Literal["active", "suspended"]


class OpeningPeriod(BaseModel):
    model_config = ConfigDict(extra="forbid")

    opens: ClockTime
    closes: ClockTime

    @model_validator(mode="after")
    def _opens_before_closes(self) -> OpeningPeriod:
        if self.opens >= self.closes:
            raise ValueError("a period opens before it closes")
        return self


def _periods_do_not_overlap(hours: dict[str, list[OpeningPeriod]]) -> dict[str, list[OpeningPeriod]]:
    for day, periods in hours.items():
        ordered = sorted(periods, key=lambda p: p.opens)
        for before, after in zip(ordered, ordered[1:]):
            if after.opens < before.closes:
                raise ValueError(f"opening periods on {day} overlap")
        hours[day] = ordered
    return hours


# Days left out are days the practice is closed.
OpeningHours = Annotated[dict[Weekday, Annotated[list[OpeningPeriod], Field(max_length=6)]],
                         AfterValidator(_periods_do_not_overlap)]


class PracticeCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ods_code: OdsCode
    name: Name
    pcn: PcnCode | None = None
    phone: Phone | None = None
    address: Address | None = None
    opening_hours: OpeningHours | None = None
    notes_for_agents: Notes | None = None


class PracticePatch(BaseModel):
    """Only the fields sent change; `null` clears an optional field."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    pcn: PcnCode | None = None
    status: PracticeStatus | None = None
    phone: Phone | None = None
    address: Address | None = None
    opening_hours: OpeningHours | None = None
    notes_for_agents: Notes | None = None


class PracticeOut(BaseModel):
    ods_code: str
    name: str
    pcn: str | None
    status: PracticeStatus
    phone: str | None
    address: str | None
    opening_hours: dict[str, list[OpeningPeriod]] | None
    notes_for_agents: str | None
    version: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, practice) -> PracticeOut:  # noqa: ANN001 - the ORM row
        return cls(ods_code=practice.ods_code, name=practice.name, pcn=practice.pcn_code, status=practice.status,
                   phone=practice.phone, address=practice.address, opening_hours=practice.opening_hours,
                   notes_for_agents=practice.notes_for_agents, version=practice.version,
                   created_at=to_london(practice.created_at), updated_at=to_london(practice.updated_at))


class PracticeSummary(BaseModel):
    ods_code: str
    name: str
    status: PracticeStatus
