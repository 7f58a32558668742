from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from practice_registry_svc.slot_types.models import SlotType


async def list_for(session: AsyncSession, ods_code: str) -> Sequence[SlotType]:
    query = select(SlotType).where(SlotType.ods_code == ods_code).order_by(SlotType.position)
    return (await session.execute(query)).scalars().all()


async def replace(session: AsyncSession, ods_code: str, rows: list[dict]) -> None:
    await session.execute(delete(SlotType).where(SlotType.ods_code == ods_code))
    if rows:
        await session.execute(insert(SlotType), [{**row, "ods_code": ods_code, "position": i}
                                                 for i, row in enumerate(rows)])
