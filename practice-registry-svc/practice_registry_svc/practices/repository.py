from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from practice_registry_svc.practices.models import Practice


async def get(session: AsyncSession, ods_code: str, *, for_update: bool = False) -> Practice | None:
    query = select(Practice).where(Practice.ods_code == ods_code)
    if for_update:
        # Serialises concurrent changes to one practice on PostgreSQL (SQLite already has one writer).
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def list_page(session: AsyncSession, *, only_ods: str | None, pcn: str | None, text: str | None,
                    after: str | None, limit: int) -> Sequence[Practice]:
    query = select(Practice).order_by(Practice.ods_code).limit(limit)
    if only_ods is not None:
        query = query.where(Practice.ods_code == only_ods)
    if pcn is not None:
        query = query.where(Practice.pcn_code == pcn)
    if text:
        query = query.where(or_(Practice.name.icontains(text, autoescape=True),
                                Practice.ods_code.icontains(text, autoescape=True)))
    if after is not None:
        query = query.where(Practice.ods_code > after)
    return (await session.execute(query)).scalars().all()


async def members_of(session: AsyncSession, pcn_code: str) -> Sequence[Practice]:
    query = select(Practice).where(Practice.pcn_code == pcn_code).order_by(Practice.ods_code)
    return (await session.execute(query)).scalars().all()
