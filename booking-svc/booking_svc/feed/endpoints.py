from __future__ import annotations

from typing import Annotated

from fastapi import Query

from services.app import WritesOnRead
from booking_svc.feed import service
from booking_svc.feed.schemas import FeedPage
from services.app import DbSession, service_router
from services.auth import AdminOrPractice
from services.pagination import Limit, clamp_limit

router = service_router(prefix="/api/v1/feed", tags=["feed"])


@router.get("/{ods_code}", response_model=FeedPage, dependencies=[WritesOnRead])
async def read_feed(ods_code: str, session: DbSession, principal: AdminOrPractice,
                    after: Annotated[str | None, Query(max_length=20)] = None, limit: Limit = None) -> dict:
    """Every booking-side change for the practice in commit order. Each item's `cursor` is stable: pass the last
    one you processed as `after`. `next_cursor` is set while more items are waiting now; `last_cursor` is where
    to resume polling."""
    return await service.read(session, principal, ods_code, after=after, limit=clamp_limit(limit))
