"""Writing to and reading a practice's feed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from booking_svc.feed import repository
from services.timeutil import london_iso
from services.audit import record_audit
from services.auth import Principal, ensure_acts_for
from services.contracts.audit import BookingAuditRecorded
from services.errors import Unprocessable

KINDS = ("booked", "cancelled", "rescheduled", "displaced", "status_changed")


async def append(session: AsyncSession, ods_code: str, kind: str, appointment: dict[str, Any], now: datetime,
                 **extra: Any) -> int:
    """Call last in a transaction, once per practice in ODS-code order: the counter lock is held to commit."""
    return await repository.append(session, **entry(ods_code, kind, appointment, now, **extra))


def entry(ods_code: str, kind: str, appointment: dict[str, Any], now: datetime, **extra: Any) -> dict[str, Any]:
    """A feed entry for `repository.append`, or for `repository.entry_params` when the statement that makes the
    change writes it too."""
    return {"ods_code": ods_code, "kind": kind, "appointment_id": appointment["id"], "occurred_at": now,
            "body": {"appointment": appointment, **extra}}


def parse_after(after: str | None) -> int:
    if after is None or after == "":
        return 0
    if not after.isdigit() or len(after) > 18:
        raise Unprocessable("`after` is a cursor from this feed (a whole number).", code="invalid_cursor")
    return int(after)


async def read(session: AsyncSession, principal: Principal, ods_code: str, *, after: str | None,
               limit: int) -> dict[str, Any]:
    ods_code = ods_code.upper()
    ensure_acts_for(principal, ods_code)
    position = parse_after(after)
    entries = await repository.page(session, ods_code, after=position, limit=limit + 1)
    more = len(entries) > limit
    entries = entries[:limit]
    items = [{"cursor": str(e.seq), "seq": e.seq, "kind": e.kind, "occurred_at": london_iso(e.occurred_at),
              "appointment_id": e.appointment_id, **e.body} for e in entries]
    if items:  # the feed shows patients' NHS numbers: reading them is audited (an empty poll shows nothing)
        await record_audit(session, BookingAuditRecorded, principal, action="feed.read", target_kind="feed",
                           target_id=ods_code, on_behalf_of=ods_code, result_count=len(items))
    # next_cursor: there is more right now. last_cursor: where a poller resumes next time, more or not.
    return {"items": items, "next_cursor": items[-1]["cursor"] if more else None,
            "last_cursor": items[-1]["cursor"] if items else str(position)}
