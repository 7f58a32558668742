"""Primary Care Networks. Created explicitly by an admin; a practice names its PCN by code."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from services.errors import Conflict, NotFound, Unprocessable
from services.pagination import decode_cursor, encode_cursor
from services.timeutil import utcnow

from practice_registry_svc.pcns import repository
from practice_registry_svc.pcns.models import Pcn
from practice_registry_svc.pcns.schemas import PcnCreate
from practice_registry_svc.practices import repository as practices
from practice_registry_svc.practices.models import Practice


async def create_pcn(session: AsyncSession, body: PcnCreate) -> Pcn:
    if await repository.get(session, body.code) is not None:
        raise Conflict(f"PCN {body.code} already exists.", code="duplicate_pcn")
    pcn = Pcn(code=body.code, name=body.name, created_at=utcnow())
    session.add(pcn)
    await session.flush()
    return pcn


async def pcn_with_members(session: AsyncSession, code: str) -> tuple[Pcn, Sequence[Practice]]:
    pcn = await repository.get(session, code.strip().upper())
    if pcn is None:
        raise NotFound(f"No PCN {code}.", code="pcn_not_found")
    return pcn, await practices.members_of(session, pcn.code)


async def list_pcns(session: AsyncSession, *, limit: int, cursor: str | None) -> tuple[Sequence[Pcn], str | None]:
    after = (decode_cursor(cursor) or {}).get("after")
    if after is not None and not isinstance(after, str):
        raise Unprocessable("The cursor is not one this service issued.", code="invalid_cursor")
    rows = await repository.list_page(session, after=after, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, encode_cursor({"after": rows[-1].code}) if more else None
