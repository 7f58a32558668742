from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

from services.app import DbSession, service_router
from services.auth import Admin, AdminOrPractice, StaffOrPractice
from services.pagination import Limit, Page, clamp_limit

from practice_registry_svc.practices import service
from practice_registry_svc.practices.schemas import PracticeCreate, PracticeOut, PracticePatch

router = service_router(prefix="/api/v1/practices", tags=["practices"])

OdsPath = Annotated[str, Path(max_length=20, description="The practice's ODS code")]
NameOrCode = Annotated[str | None, Query(max_length=200, description="Part of a practice's name or ODS code")]


@router.post("", status_code=201, response_model=PracticeOut)
async def create_practice(body: PracticeCreate, session: DbSession, admin: Admin) -> PracticeOut:
    return PracticeOut.of(await service.create_practice(session, admin, body))


@router.get("", response_model=Page[PracticeOut])
async def list_practices(session: DbSession, caller: StaffOrPractice,
                         pcn: Annotated[str | None, Query(max_length=40)] = None,
                         q: NameOrCode = None,
                         limit: Limit = None,
                         cursor: Annotated[str | None, Query(max_length=500)] = None) -> Page[PracticeOut]:
    rows, next_cursor = await service.list_practices(session, caller, pcn=pcn, text=q, limit=clamp_limit(limit),
                                                     cursor=cursor)
    return Page[PracticeOut](items=[PracticeOut.of(p) for p in rows], next_cursor=next_cursor)


@router.get("/{ods}", response_model=PracticeOut)
async def get_practice(ods: OdsPath, session: DbSession, caller: StaffOrPractice) -> PracticeOut:
    return PracticeOut.of(await service.practice_for_reading(session, caller, ods))


@router.patch("/{ods}", response_model=PracticeOut)
async def update_practice(ods: OdsPath, body: PracticePatch, session: DbSession,
                          caller: AdminOrPractice) -> PracticeOut:
    return PracticeOut.of(await service.update_practice(session, caller, ods, body))
