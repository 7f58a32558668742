from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

from services.app import DbSession, service_router
from services.auth import Admin, StaffOrPractice
from services.pagination import Limit, Page, clamp_limit
from services.timeutil import to_london

from practice_registry_svc.pcns import service
from practice_registry_svc.pcns.schemas import PcnCreate, PcnOut, PcnWithMembers
from practice_registry_svc.practices.schemas import PracticeSummary

router = service_router(prefix="/api/v1/pcns", tags=["pcns"])


def _out(pcn) -> PcnOut:  # noqa: ANN001
    return PcnOut(code=pcn.code, name=pcn.name, created_at=to_london(pcn.created_at))


@router.post("", status_code=201, response_model=PcnOut)
async def create_pcn(body: PcnCreate, session: DbSession, _admin: Admin) -> PcnOut:
    return _out(await service.create_pcn(session, body))


@router.get("", response_model=Page[PcnOut])
async def list_pcns(session: DbSession, _caller: StaffOrPractice, limit: Limit = None,
                    cursor: Annotated[str | None, Query(max_length=500)] = None) -> Page[PcnOut]:
    rows, next_cursor = await service.list_pcns(session, limit=clamp_limit(limit), cursor=cursor)
    return Page[PcnOut](items=[_out(p) for p in rows], next_cursor=next_cursor)


@router.get("/{code}", response_model=PcnWithMembers)
async def get_pcn(code: Annotated[str, Path(max_length=40)], session: DbSession,
                  _caller: StaffOrPractice) -> PcnWithMembers:
    pcn, members = await service.pcn_with_members(session, code)
    return PcnWithMembers(**_out(pcn).model_dump(), practices=[
        PracticeSummary(ods_code=p.ods_code, name=p.name, status=p.status) for p in members])
