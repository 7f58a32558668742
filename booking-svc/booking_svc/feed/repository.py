"""Feed queries."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from booking_svc.db import insert_ignoring_duplicates
from booking_svc.feed.models import FeedCounter, FeedEntry


async def next_seq(session: AsyncSession, ods_code: str) -> int:
    """Take the practice's next sequence number; the counter row stays locked until this transaction ends."""
    bump = (update(FeedCounter).where(FeedCounter.ods_code == ods_code)
            .values(last_seq=FeedCounter.last_seq + 1).returning(FeedCounter.last_seq)
            .execution_options(synchronize_session=False))
    seq = (await session.execute(bump)).scalar_one_or_none()
    if seq is None:
        await session.execute(insert_ignoring_duplicates(session, FeedCounter.__table__)
                              .values(ods_code=ods_code, last_seq=0))
        seq = (await session.execute(bump)).scalar_one()
    return int(seq)


async def add(session: AsyncSession, entry: FeedEntry) -> None:
    session.add(entry)
    await session.flush([entry])


async def page(session: AsyncSession, ods_code: str, *, after: int, limit: int) -> list[FeedEntry]:
    query = (select(FeedEntry).where(FeedEntry.ods_code == ods_code, FeedEntry.seq > after)
             .order_by(FeedEntry.seq).limit(limit))
    return list((await session.execute(query)).scalars())
