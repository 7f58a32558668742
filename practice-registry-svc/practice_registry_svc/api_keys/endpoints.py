from __future__ import annotations

from typing import Annotated

from fastapi import Path, Response

from services.app import DbSession, service_router
from services.auth import Admin, AdminOrPractice, require_roles
from services.db import sqlite_write_intent
from services.pagination import Page
from services.timeutil import to_london

from practice_registry_svc.api_keys import service
from practice_registry_svc.api_keys.schemas import ApiKeyIssued, ApiKeyOut, VerifiedKey, VerifyRequest
from practice_registry_svc.practices.endpoints import OdsPath

router = service_router(prefix="/api/v1/practices/{ods}/api-keys", tags=["api keys"])
internal_router = service_router(prefix="/internal/v1/api-keys", include_in_schema=False)

KeyIdPath = Annotated[str, Path(max_length=64)]


def _out(row) -> ApiKeyOut:  # noqa: ANN001
    return ApiKeyOut(key_id=row.key_id, ods_code=row.ods_code, created_at=to_london(row.created_at),
                     created_by=row.created_by, revoked_at=to_london(row.revoked_at) if row.revoked_at else None)


@router.post("", status_code=201, response_model=ApiKeyIssued)
async def issue_key(ods: OdsPath, session: DbSession, admin: Admin, response: Response) -> ApiKeyIssued:
    row, key = await service.issue_key(session, admin, ods)
    response.headers["Cache-Control"] = "no-store"
    return ApiKeyIssued(key_id=row.key_id, key=key, ods_code=row.ods_code, created_at=to_london(row.created_at))


@router.get("", response_model=Page[ApiKeyOut])
async def list_keys(ods: OdsPath, session: DbSession, caller: AdminOrPractice) -> Page[ApiKeyOut]:
    return Page[ApiKeyOut](items=[_out(row) for row in await service.list_keys(session, caller, ods)])


@router.delete("/{key_id}", status_code=204)
async def revoke_key(ods: OdsPath, key_id: KeyIdPath, session: DbSession, caller: AdminOrPractice) -> Response:
    """Admins, or the practice itself (a practice that suspects a key leaked should not have to wait)."""
    await service.revoke_key(session, caller, ods, key_id)
    return Response(status_code=204)


@internal_router.post("/verify", response_model=VerifiedKey,
                      dependencies=[require_roles("service")])
async def verify_key(body: VerifyRequest, session: DbSession) -> VerifiedKey:
    # A read, although a POST: on SQLite do not queue behind writers (e.g. a large patient upload).
    sqlite_write_intent.set(False)
    row, practice = await service.verify_key(session, body.key)
    return VerifiedKey(key_id=row.key_id, ods_code=row.ods_code, practice_status=practice.status)
