from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, StringConstraints

from practice_registry_svc.practices.schemas import Name

# The fixed vocabulary booking searches by ("a nurse appointment", "see a pharmacist").
ClinicianRole = Literal["gp", "anp", "nurse", "hca", "pharmacist", "physio", "paramedic", "mental_health"]
# Patients may ask to see a clinician of a given gender; FHIR's administrative-gender codes.
Gender = Literal["female", "male", "other", "unknown"]
ClinicianId = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9._-]{1,64}$")]


class ClinicianIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    clinician_id: ClinicianId
    name: Name
    role: ClinicianRole
    gender: Gender | None = None


class ClinicianOut(BaseModel):
    clinician_id: str
    name: str
    role: ClinicianRole
    gender: Gender | None
