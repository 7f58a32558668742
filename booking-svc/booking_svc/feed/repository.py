"""Feed queries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CTE, ScalarSelect, bindparam, exists, insert, literal, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from booking_svc.db import dialect_name, insert_ignoring_duplicates
from booking_svc.feed.models import FeedCounter, FeedEntry


_BUMP = (update(FeedCounter.__table__).where(FeedCounter.ods_code == bindparam("p_ods"))
         .values(last_seq=FeedCounter.last_seq + 1).returning(FeedCounter.last_seq))
_ADD = insert(FeedEntry.__table__)
# PostgreSQL takes the number and writes the entry in one round trip (a data-modifying WITH, which SQLite lacks).
_BUMPED = _BUMP.cte("bumped")
_ENTRY = FeedEntry.__table__.c
_BUMP_AND_ADD = (insert(FeedEntry.__table__).from_select(
    ["ods_code", "seq", "kind", "appointment_id", "occurred_at", "body"],
    select(bindparam("p_ods", type_=_ENTRY.ods_code.type), _BUMPED.c.last_seq,
           bindparam("p_kind", type_=_ENTRY.kind.type), bindparam("p_appointment_id", type_=_ENTRY.appointment_id.type),
           bindparam("p_occurred_at", type_=_ENTRY.occurred_at.type), bindparam("p_body", type_=_ENTRY.body.type)))
    .returning(_ENTRY.seq))


def bump_and_add_after(gate: CTE) -> ScalarSelect:
    """PostgreSQL, for a feed entry written by the statement that makes its change: as `append`, but only if the
    CTE `gate` has a row (the change happened), which also makes the counter lock come after the change's own
    locks. Its parameters are `entry_params`; the subquery's value is the entry's number, NULL if nothing was
    written (no change, or the practice's first entry: its counter row does not exist yet)."""
    bumped = (update(FeedCounter.__table__)
              .where(FeedCounter.ods_code == bindparam("f_ods"), exists(select(literal(1)).select_from(gate)))
              .values(last_seq=FeedCounter.last_seq + 1).returning(FeedCounter.last_seq)
              .cte("feed_bumped"))
    return _add_numbered_by(bumped)


def upsert_and_add_after(gate: CTE) -> ScalarSelect:
    """As `bump_and_add_after`, for a group-committed batch, with the counter row created by the practice's first
    entry (an upsert): NULL only if `gate` has no row."""
    upserted = (pg_insert(FeedCounter.__table__)
                .from_select(["ods_code", "last_seq"],
                             select(bindparam("f_ods", type_=_ENTRY.ods_code.type), literal(1)).select_from(gate))
                .on_conflict_do_update(index_elements=["ods_code"], set_={"last_seq": FeedCounter.last_seq + 1})
                .returning(FeedCounter.last_seq)
                .cte("feed_upserted"))
    return _add_numbered_by(upserted)


def _add_numbered_by(counter: CTE) -> ScalarSelect:
    """The entry (`entry_params`) numbered by the counter's new value, if `counter` returned one; its number."""
    added = (insert(FeedEntry.__table__).from_select(
        ["ods_code", "seq", "kind", "appointment_id", "occurred_at", "body"],
        select(bindparam("f_ods", type_=_ENTRY.ods_code.type), counter.c.last_seq,
               bindparam("f_kind", type_=_ENTRY.kind.type),
               bindparam("f_appointment_id", type_=_ENTRY.appointment_id.type),
               bindparam("f_occurred_at", type_=_ENTRY.occurred_at.type), bindparam("f_body", type_=_ENTRY.body.type)))
             .returning(_ENTRY.seq)
             .cte("feed_added"))
    return select(added.c.seq).scalar_subquery()


def entry_params(*, ods_code: str, kind: str, appointment_id: str, occurred_at: datetime,
                 body: dict[str, Any]) -> dict[str, Any]:
    return {"f_ods": ods_code, "f_kind": kind, "f_appointment_id": appointment_id, "f_occurred_at": occurred_at,
            "f_body": body}


async def next_seq(session: AsyncSession, ods_code: str) -> int:
    """Take the practice's next sequence number; the counter row stays locked until this transaction ends."""
    seq = (await session.execute(_BUMP, {"p_ods": ods_code})).scalar_one_or_none()
    if seq is None:
        await session.execute(insert_ignoring_duplicates(session, FeedCounter.__table__)
                              .values(ods_code=ods_code, last_seq=0))
        seq = (await session.execute(_BUMP, {"p_ods": ods_code})).scalar_one()
    return int(seq)


async def add(session: AsyncSession, *, ods_code: str, seq: int, kind: str, appointment_id: str, occurred_at: datetime,
              body: dict[str, Any]) -> None:
    await session.execute(_ADD, {"ods_code": ods_code, "seq": seq, "kind": kind, "appointment_id": appointment_id,
                                 "occurred_at": occurred_at, "body": body})


async def append(session: AsyncSession, *, ods_code: str, kind: str, appointment_id: str, occurred_at: datetime,
                 body: dict[str, Any]) -> int:
    """Take the practice's next number and write the entry; returns the number."""
    if dialect_name(session) == "postgresql":
        seq = (await session.execute(_BUMP_AND_ADD, {
            "p_ods": ods_code, "p_kind": kind, "p_appointment_id": appointment_id, "p_occurred_at": occurred_at,
            "p_body": body})).scalar_one_or_none()
        if seq is not None:
            return int(seq)  # otherwise the practice's first entry: its counter row does not exist yet
    seq = await next_seq(session, ods_code)
    await add(session, ods_code=ods_code, seq=seq, kind=kind, appointment_id=appointment_id, occurred_at=occurred_at,
              body=body)
    return seq


async def page(session: AsyncSession, ods_code: str, *, after: int, limit: int) -> list[FeedEntry]:
    query = (select(FeedEntry).where(FeedEntry.ods_code == ods_code, FeedEntry.seq > after)
             .order_by(FeedEntry.seq).limit(limit))
    return list((await session.execute(query)).scalars())
