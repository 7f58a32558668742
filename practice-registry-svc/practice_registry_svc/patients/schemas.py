from __future__ import annotations

from datetime import date

from pydantic import BaseModel

from practice_registry_svc.practices.schemas import OpeningPeriod


class RejectedRow(BaseModel):
    index: int
    nhs_number: str | None
    reason: str


class UploadResult(BaseModel):
    received: int
    created: int  # newly registered at this practice, including patients who moved here from another practice
    transferred_in: int  # of those, how many were registered at another practice until now
    updated: int
    unchanged: int
    removed: int
    rejected: list[RejectedRow]


class RegisteredPractice(BaseModel):
    ods_code: str
    name: str
    pcn: str | None
    status: str
    phone: str | None
    notes_for_agents: str | None
    opening_hours: dict[str, list[OpeningPeriod]] | None


class PatientMatch(BaseModel):
    nhs_number: str
    family: str
    given: str
    birth_date: date
    gender: str | None
    postcode: str | None
    phone: str | None
    practice: RegisteredPractice


class LookupResult(BaseModel):
    items: list[PatientMatch]
    ambiguous: bool  # more than one patient matched: confirm identity with the caller before booking
    truncated: bool = False  # more matched than are shown: ask the caller for more details
