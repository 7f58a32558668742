from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from practice_registry_svc.pcns.models import Pcn


async def get(session: AsyncSession, code: str) -> Pcn | None:
    return await session.get(Pcn, code)


async def list_page(session: AsyncSession, *, after: str | None, limit: int) -> Sequence[Pcn]:
    query = select(Pcn).order_by(Pcn.code).limit(limit)
    if after is not None:
        query = query.where(Pcn.code > after)
    return (await session.execute(query)).scalars().all()
