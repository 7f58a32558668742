"""Events published by practice-registry-svc. Each carries the full current state of what changed plus a
per-practice `version`, so a consumer can apply the newest and ignore anything older that arrives late."""

from __future__ import annotations

from datetime import date, time
from typing import Literal

from pydantic import BaseModel

from services.events import EventData

Channel = Literal["in_person", "telephone", "video", "home_visit"]


class PracticeData(EventData):
    ods_code: str
    name: str
    pcn: str | None = None
    status: Literal["active", "suspended"] = "active"
    phone: str | None = None
    address: str | None = None
    notes_for_agents: str | None = None
    version: int


class PracticeCreated(PracticeData):
    event_type = "registry.practice.created"


class PracticeUpdated(PracticeData):
    event_type = "registry.practice.updated"


class Clinician(BaseModel):
    clinician_id: str
    name: str
    role: str
    gender: str | None = None


class CliniciansReplaced(EventData):
    event_type = "registry.clinicians.replaced"
    ods_code: str
    clinicians: list[Clinician]
    version: int


class Release(BaseModel):
    days_before: int
    at_time: time


class SlotTypeRules(BaseModel):
    code: str
    name: str
    channel: Channel
    bookable_by_centre: bool
    max_days_ahead: int
    min_notice_minutes: int
    release: Release | None = None
    shared_with_pcn: bool = False


class SlotTypesReplaced(EventData):
    event_type = "registry.slot_types.replaced"
    ods_code: str
    slot_types: list[SlotTypeRules]
    version: int


class Registration(BaseModel):
    # Only what booking needs to check a registration: no names or addresses travel on the bus.
    nhs_number: str
    birth_date: date | None = None


class PatientsSynced(EventData):
    """A chunk of a practice's patient upload (large uploads are split across several events)."""

    event_type = "registry.patients.synced"
    ods_code: str
    registered: list[Registration]
    deregistered: list[str] = []
