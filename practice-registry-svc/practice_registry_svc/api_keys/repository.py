from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from practice_registry_svc.api_keys.models import ApiKey
from practice_registry_svc.practices.models import Practice


async def get(session: AsyncSession, key_id: str) -> ApiKey | None:
    return await session.get(ApiKey, key_id)


async def with_practice(session: AsyncSession, key_id: str) -> tuple[ApiKey, Practice] | None:
    query = select(ApiKey, Practice).join(Practice, Practice.ods_code == ApiKey.ods_code).where(ApiKey.key_id == key_id)
    row = (await session.execute(query)).first()
    return (row[0], row[1]) if row else None


async def list_for(session: AsyncSession, ods_code: str) -> Sequence[ApiKey]:
    query = select(ApiKey).where(ApiKey.ods_code == ods_code).order_by(ApiKey.created_at, ApiKey.key_id)
    return (await session.execute(query)).scalars().all()
