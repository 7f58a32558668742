from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from practice_registry_svc.clinicians.models import Clinician


async def list_for(session: AsyncSession, ods_code: str) -> Sequence[Clinician]:
    query = select(Clinician).where(Clinician.ods_code == ods_code).order_by(Clinician.position)
    return (await session.execute(query)).scalars().all()


async def replace(session: AsyncSession, ods_code: str, rows: list[dict]) -> None:
    await session.execute(delete(Clinician).where(Clinician.ods_code == ods_code))
    if rows:
        await session.execute(insert(Clinician), [{**row, "ods_code": ods_code, "position": i}
                                                  for i, row in enumerate(rows)])
