from __future__ import annotations

from typing import Annotated, Any

from fastapi import Body, Query, Request

from services.app import DbSession, GroupCommitted, service_router
from services.auth import AdminOrPractice, Staff
from services.errors import Unprocessable
from services.logging import request_id_var

from practice_registry_svc.patients import service
from practice_registry_svc.patients.schemas import LookupResult, UploadResult
from practice_registry_svc.patients.service import UploadMode
from practice_registry_svc.practices.endpoints import OdsPath

upload_router = service_router(prefix="/api/v1/practices/{ods}/patients", tags=["patients"])
lookup_router = service_router(prefix="/api/v1/patients", tags=["patients"])

_ROW_SCHEMA = {
    "type": "object",
    "required": ["nhs_number", "family", "given", "birth_date"],
    "properties": {
        "nhs_number": {"type": "string", "examples": ["943 476 5919"]},
        "family": {"type": "string"}, "given": {"type": "string"},
        "birth_date": {"type": "string", "format": "date"},
        "gender": {"type": "string", "enum": ["female", "male", "other", "unknown"]},
        "postcode": {"type": "string"}, "phone": {"type": "string"},
    },
}


@upload_router.put("", response_model=UploadResult, openapi_extra={"requestBody": {
    "required": True, "content": {"application/json": {"schema": {"type": "array", "items": _ROW_SCHEMA}}}}})
async def upload_patients(ods: OdsPath, request: Request, session: DbSession, caller: AdminOrPractice,
                          # Rows are checked one by one in the service, so one bad row cannot refuse the rest.
                          rows: Annotated[list[Any], Body()],
                          mode: Annotated[UploadMode, Query(description="replace: also deregister patients "
                                                                        "missing from the list")] = "upsert",
                          ) -> UploadResult:
    limit = request.app.state.settings.patients_upload_max_rows
    if len(rows) > limit:
        raise Unprocessable(f"At most {limit} patients per upload; split the list (use mode=upsert for the "
                            "later parts).", code="too_many_rows")
    return await service.upload_patients(session, caller, ods, rows, mode=mode)


@lookup_router.get("", response_model=LookupResult, dependencies=[GroupCommitted])
async def find_patients(request: Request, caller: Staff,
                        nhs_number: Annotated[str | None, Query(max_length=20)] = None,
                        family: Annotated[str | None, Query(max_length=100)] = None,
                        birth_date: Annotated[str | None, Query(max_length=10, description="YYYY-MM-DD")] = None,
                        postcode: Annotated[str | None, Query(max_length=10)] = None,
                        given: Annotated[str | None, Query(max_length=100, description="narrows; prefix")] = None,
                        ) -> LookupResult:
    """Every lookup is audited. Lookups arriving together are committed together with their audit records
    (practice_registry_svc.main), and answered once that commit is done."""
    query = {"nhs_number": nhs_number, "family": family, "birth_date": birth_date, "postcode": postcode,
             "given": given}
    return await request.app.state.lookups.submit(service.LookupRequest(
        caller, service.by_nhs_number(**query), query, request.app.state.settings.lookup_max_results,
        request_id_var.get()))
