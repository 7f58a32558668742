"""Registry events keep the local copy current. Each handler runs inside the inbox transaction (applied once);
practices, clinician lists and slot-type lists carry a per-practice version and only a newer one is applied,
so an old event that arrives late (a redelivery, another replica) cannot roll the copy back."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from booking_svc.registry import repository
from booking_svc.registry.models import Practice
from services.contracts.registry import (
    CliniciansReplaced,
    PatientsSynced,
    PracticeCreated,
    PracticeData,
    PracticeUpdated,
    SlotTypesReplaced,
)
from services.events import Envelope
from services.logging import get_logger
from services.nhs import is_valid_nhs_number, normalise_nhs_number

log = get_logger(__name__)


async def on_practice(session: AsyncSession, envelope: Envelope, data: PracticeData) -> None:
    ods = data.ods_code.upper()
    practice = await repository.get_practice(session, ods, for_update=True)
    if practice is not None and practice.version >= data.version:
        return
    if practice is None:
        practice = Practice(ods_code=ods)
        session.add(practice)
    practice.name, practice.pcn, practice.status, practice.version = data.name, data.pcn, data.status, data.version


async def on_clinicians_replaced(session: AsyncSession, envelope: Envelope, data: CliniciansReplaced) -> None:
    ods = data.ods_code.upper()
    if not await _is_newer(session, ods, "clinicians", data.version):
        return
    await repository.replace_clinicians(session, ods, [
        {"ods_code": ods, "clinician_id": c.clinician_id, "name": c.name, "role": c.role, "gender": c.gender}
        for c in {c.clinician_id: c for c in data.clinicians}.values()])


async def on_slot_types_replaced(session: AsyncSession, envelope: Envelope, data: SlotTypesReplaced) -> None:
    ods = data.ods_code.upper()
    if not await _is_newer(session, ods, "slot_types", data.version):
        return
    await repository.replace_slot_types(session, ods, [
        {"ods_code": ods, "code": t.code, "name": t.name, "channel": t.channel,
         "bookable_by_centre": t.bookable_by_centre, "max_days_ahead": t.max_days_ahead,
         "min_notice_minutes": t.min_notice_minutes,
         "release_days_before": t.release.days_before if t.release else None,
         "release_at_time": t.release.at_time.replace(tzinfo=None) if t.release else None,
         "shared_with_pcn": t.shared_with_pcn}
        for t in {t.code: t for t in data.slot_types}.values()])


async def on_patients_synced(session: AsyncSession, envelope: Envelope, data: PatientsSynced) -> None:
    ods = data.ods_code.upper()
    registered = sorted({normalise_nhs_number(r.nhs_number) for r in data.registered
                         if is_valid_nhs_number(r.nhs_number)})
    deregistered = sorted({normalise_nhs_number(n) for n in data.deregistered if is_valid_nhs_number(n)})
    skipped = sum(not is_valid_nhs_number(n) for n in [*(r.nhs_number for r in data.registered), *data.deregistered])
    if skipped:
        log.warning("registry.invalid_nhs_numbers_skipped", ods_code=ods, count=skipped)
    await repository.remove_registrations(session, ods, deregistered)
    await repository.add_registrations(session, ods, registered)


async def _is_newer(session: AsyncSession, ods: str, aggregate: str, version: int) -> bool:
    applied = await repository.applied_version(session, ods, aggregate)
    if applied is not None and applied >= version:
        return False
    await repository.remember_version(session, ods, aggregate, version)
    return True


# What searches read from memory (repository.PracticeRules): a replica forgets its copy once it applies one.
RULES_EVENTS = frozenset(contract.event_type for contract in (PracticeCreated, PracticeUpdated, SlotTypesReplaced))

HANDLERS = {
    PracticeCreated: on_practice,
    PracticeUpdated: on_practice,
    CliniciansReplaced: on_clinicians_replaced,
    SlotTypesReplaced: on_slot_types_replaced,
    PatientsSynced: on_patients_synced,
}
