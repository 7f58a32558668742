"""A practice's slot types and their booking rules, replaced as a whole list."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import time

from sqlalchemy.ext.asyncio import AsyncSession

from services.auth import Principal
from services.contracts.registry import Release, SlotTypeRules, SlotTypesReplaced
from services.errors import Unprocessable
from services.logging import get_logger
from services.outbox import record_event

from practice_registry_svc.practices.service import next_version, practice_for_change, practice_for_reading
from practice_registry_svc.slot_types import repository
from practice_registry_svc.slot_types.models import SlotType
from practice_registry_svc.slot_types.schemas import ReleaseRule, SlotTypeIn, SlotTypeOut

log = get_logger(__name__)

COLUMNS = ("code", "name", "channel", "bookable_by_centre", "max_days_ahead", "min_notice_minutes",
           "release_days_before", "release_at_time", "shared_with_pcn")


def to_out(row: SlotType) -> SlotTypeOut:
    release = None
    if row.release_days_before is not None and row.release_at_time is not None:
        release = ReleaseRule(days_before=row.release_days_before, at_time=row.release_at_time)
    return SlotTypeOut(code=row.code, name=row.name, channel=row.channel, bookable_by_centre=row.bookable_by_centre,
                       max_days_ahead=row.max_days_ahead, min_notice_minutes=row.min_notice_minutes, release=release,
                       shared_with_pcn=row.shared_with_pcn)


def _columns(slot_type: SlotTypeIn) -> dict:
    return {"code": slot_type.code, "name": slot_type.name, "channel": slot_type.channel,
            "bookable_by_centre": slot_type.bookable_by_centre, "max_days_ahead": slot_type.max_days_ahead,
            "min_notice_minutes": slot_type.min_notice_minutes,
            "release_days_before": slot_type.release.days_before if slot_type.release else None,
            "release_at_time": slot_type.release.at_time if slot_type.release else None,
            "shared_with_pcn": slot_type.shared_with_pcn}


def _rules(slot_type: SlotTypeIn) -> SlotTypeRules:
    release = None
    if slot_type.release is not None:
        release = Release(days_before=slot_type.release.days_before,
                          at_time=time.fromisoformat(slot_type.release.at_time))
    return SlotTypeRules(code=slot_type.code, name=slot_type.name, channel=slot_type.channel,
                         bookable_by_centre=slot_type.bookable_by_centre, max_days_ahead=slot_type.max_days_ahead,
                         min_notice_minutes=slot_type.min_notice_minutes, release=release,
                         shared_with_pcn=slot_type.shared_with_pcn)


async def list_slot_types(session: AsyncSession, principal: Principal, ods_code: str) -> list[SlotTypeOut]:
    practice = await practice_for_reading(session, principal, ods_code)
    return [to_out(row) for row in await repository.list_for(session, practice.ods_code)]


async def replace_slot_types(session: AsyncSession, principal: Principal, ods_code: str,
                             slot_types: list[SlotTypeIn]) -> list[SlotTypeOut]:
    practice = await practice_for_change(session, principal, ods_code)
    counts = Counter(s.code for s in slot_types)
    repeated = sorted(code for code, n in counts.items() if n > 1)
    if repeated:
        raise Unprocessable(f"Each slot type code may appear once; repeated: {', '.join(repeated)}.",
                            code="duplicate_slot_type", codes=repeated)
    wanted = [_columns(s) for s in slot_types]
    current: Sequence[SlotType] = await repository.list_for(session, practice.ods_code)
    if wanted == [{c: getattr(row, c) for c in COLUMNS} for row in current]:
        return [to_out(row) for row in current]  # the same rules again change nothing
    await repository.replace(session, practice.ods_code, wanted)
    version = next_version(practice)
    await session.flush()
    event = SlotTypesReplaced(ods_code=practice.ods_code, slot_types=[_rules(s) for s in slot_types], version=version)
    await record_event(session, event, subject_key=practice.ods_code)
    log.info("slot_types.replaced", ods_code=practice.ods_code, count=len(wanted), version=version)
    return [to_out(row) for row in await repository.list_for(session, practice.ods_code)]
