"""Practices: who may see and change them, and the snapshot events every change publishes."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from services.auth import Principal, ensure_acts_for
from services.contracts.registry import PracticeCreated, PracticeUpdated
from services.errors import Conflict, Forbidden, NotFound, Unprocessable
from services.logging import get_logger
from services.outbox import record_event
from services.pagination import decode_cursor, encode_cursor
from services.timeutil import utcnow

from practice_registry_svc.pcns import repository as pcns
from practice_registry_svc.practices import repository
from practice_registry_svc.practices.models import Practice
from practice_registry_svc.practices.schemas import PracticeCreate, PracticePatch

log = get_logger(__name__)

# What a practice's own key may change: how to reach it and what agents should know. Its name, its PCN and
# whether the centre books for it at all are the centre's (admin's) decisions.
PRACTICE_EDITABLE = frozenset({"phone", "address", "opening_hours", "notes_for_agents"})
REQUIRED = frozenset({"name", "status"})


async def practice_for_reading(session: AsyncSession, principal: Principal, ods_code: str) -> Practice:
    ods_code = ods_code.upper()
    ensure_acts_for(principal, ods_code)
    practice = await repository.get(session, ods_code)
    if practice is None:
        raise NotFound(f"No practice {ods_code}.", code="practice_not_found")
    return practice


async def practice_for_change(session: AsyncSession, principal: Principal, ods_code: str) -> Practice:
    """The practice row, locked until the transaction ends, after checking the caller may act for it."""
    ods_code = ods_code.upper()
    ensure_acts_for(principal, ods_code)
    practice = await repository.get(session, ods_code, for_update=True)
    if practice is None:
        raise NotFound(f"No practice {ods_code}.", code="practice_not_found")
    return practice


def next_version(practice: Practice) -> int:
    """Every event about a practice carries the next value of its one counter."""
    practice.version += 1
    practice.updated_at = utcnow()
    return practice.version


async def _require_pcn(session: AsyncSession, code: str | None) -> None:
    # An unknown PCN is refused rather than created: a typo would otherwise make a phantom network and
    # silently share (or stop sharing) hub capacity with the wrong practices.
    if code is not None and await pcns.get(session, code) is None:
        raise Unprocessable(f"There is no PCN {code}; create it first (POST /api/v1/pcns).", code="unknown_pcn",
                            errors=[{"loc": ["body", "pcn"], "msg": "unknown PCN", "type": "unknown_pcn"}])


def _snapshot(practice: Practice) -> dict:
    return {"ods_code": practice.ods_code, "name": practice.name, "pcn": practice.pcn_code, "status": practice.status,
            "phone": practice.phone, "address": practice.address, "notes_for_agents": practice.notes_for_agents,
            "version": practice.version}


async def create_practice(session: AsyncSession, principal: Principal, body: PracticeCreate) -> Practice:
    if await repository.get(session, body.ods_code) is not None:
        raise Conflict(f"Practice {body.ods_code} already exists.", code="duplicate_practice")
    await _require_pcn(session, body.pcn)
    now = utcnow()
    practice = Practice(ods_code=body.ods_code, name=body.name, pcn_code=body.pcn, status="active", phone=body.phone,
                        address=body.address, opening_hours=_hours(body.opening_hours),
                        notes_for_agents=body.notes_for_agents, version=1, created_at=now, updated_at=now)
    session.add(practice)
    await session.flush()
    await record_event(session, PracticeCreated(**_snapshot(practice)), subject_key=practice.ods_code)
    log.info("practice.created", ods_code=practice.ods_code, actor=principal.subject)
    return practice


async def update_practice(session: AsyncSession, principal: Principal, ods_code: str,
                          patch: PracticePatch) -> Practice:
    practice = await practice_for_change(session, principal, ods_code)
    sent = patch.model_fields_set
    if principal.is_practice and sent - PRACTICE_EDITABLE:
        fields = sorted(sent - PRACTICE_EDITABLE)
        raise Forbidden(f"A practice's key may not change: {', '.join(fields)}.", code="field_not_allowed",
                        fields=fields)
    cleared = sorted(f for f in sent & REQUIRED if getattr(patch, f) is None)
    if cleared:
        errors = [{"loc": ["body", f], "msg": "may not be null", "type": "required"} for f in cleared]
        raise Unprocessable(f"These fields cannot be empty: {', '.join(cleared)}.", code="required_field",
                            errors=errors)
    changes = {field: getattr(patch, field) for field in sent}
    if "opening_hours" in changes:
        changes["opening_hours"] = _hours(patch.opening_hours)
    if "pcn" in changes:
        changes["pcn_code"] = changes.pop("pcn")
        if changes["pcn_code"] != practice.pcn_code:
            await _require_pcn(session, changes["pcn_code"])
    changed = {field: value for field, value in changes.items() if getattr(practice, field) != value}
    if not changed:
        return practice  # nothing new: no version, no event
    for field, value in changed.items():
        setattr(practice, field, value)
    next_version(practice)
    await session.flush()
    await record_event(session, PracticeUpdated(**_snapshot(practice)), subject_key=practice.ods_code)
    log.info("practice.updated", ods_code=practice.ods_code, fields=sorted(changed), actor=principal.subject)
    return practice


async def list_practices(session: AsyncSession, principal: Principal, *, pcn: str | None, text: str | None,
                         limit: int, cursor: str | None) -> tuple[Sequence[Practice], str | None]:
    position = decode_cursor(cursor) or {}
    after = position.get("after")
    if after is not None and not isinstance(after, str):
        raise Unprocessable("The cursor is not one this service issued.", code="invalid_cursor")
    # A practice's key sees only its own practice; staff see the region.
    only = principal.ods_code if principal.is_practice else None
    rows = await repository.list_page(session, only_ods=only, pcn=pcn.strip().upper() if pcn else None,
                                      text=text.strip() if text else None, after=after, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, encode_cursor({"after": rows[-1].ods_code}) if more else None


def _hours(hours: dict | None) -> dict | None:
    if hours is None:
        return None
    return {day: [period.model_dump() for period in periods] for day, periods in hours.items()}
