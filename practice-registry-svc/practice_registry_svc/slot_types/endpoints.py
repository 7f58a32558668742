from __future__ import annotations

from typing import Annotated

from fastapi import Body

from services.app import DbSession, service_router
from services.auth import AdminOrPractice, StaffOrPractice

from practice_registry_svc.practices.endpoints import OdsPath
from practice_registry_svc.slot_types import service
from practice_registry_svc.slot_types.schemas import SlotTypeIn, SlotTypeOut

router = service_router(prefix="/api/v1/practices/{ods}/slot-types", tags=["slot types"])

MAX_SLOT_TYPES = 200


@router.get("", response_model=list[SlotTypeOut])
async def list_slot_types(ods: OdsPath, session: DbSession, caller: StaffOrPractice) -> list[SlotTypeOut]:
    return await service.list_slot_types(session, caller, ods)


@router.put("", response_model=list[SlotTypeOut])
async def replace_slot_types(ods: OdsPath, session: DbSession, caller: AdminOrPractice,
                             slot_types: Annotated[list[SlotTypeIn], Body(max_length=MAX_SLOT_TYPES)],
                             ) -> list[SlotTypeOut]:
    """The practice's complete set of slot types and rules; any type left out is removed."""
    return await service.replace_slot_types(session, caller, ods, slot_types)
