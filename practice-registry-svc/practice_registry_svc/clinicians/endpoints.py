from __future__ import annotations

from typing import Annotated

from fastapi import Body

from services.app import DbSession, service_router
from services.auth import AdminOrPractice, StaffOrPractice

from practice_registry_svc.clinicians import service
from practice_registry_svc.clinicians.schemas import ClinicianIn, ClinicianOut
from practice_registry_svc.practices.endpoints import OdsPath

router = service_router(prefix="/api/v1/practices/{ods}/clinicians", tags=["clinicians"])

MAX_CLINICIANS = 2000


def _out(rows) -> list[ClinicianOut]:  # noqa: ANN001
    return [ClinicianOut(clinician_id=c.clinician_id, name=c.name, role=c.role, gender=c.gender) for c in rows]


@router.get("", response_model=list[ClinicianOut])
async def list_clinicians(ods: OdsPath, session: DbSession, caller: StaffOrPractice) -> list[ClinicianOut]:
    return _out(await service.list_clinicians(session, caller, ods))


@router.put("", response_model=list[ClinicianOut])
async def replace_clinicians(ods: OdsPath, session: DbSession, caller: AdminOrPractice,
                             clinicians: Annotated[list[ClinicianIn], Body(max_length=MAX_CLINICIANS)],
                             ) -> list[ClinicianOut]:
    """The practice's complete list of clinicians; anyone left out is removed."""
    return _out(await service.replace_clinicians(session, caller, ods, clinicians))
