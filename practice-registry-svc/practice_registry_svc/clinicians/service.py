"""A practice's clinicians: always replaced as a whole list, as the practice's own system holds them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from services.auth import Principal
from services.contracts.registry import Clinician as ClinicianData
from services.contracts.registry import CliniciansReplaced
from services.errors import Unprocessable
from services.logging import get_logger
from services.outbox import record_event

from practice_registry_svc.clinicians import repository
from practice_registry_svc.clinicians.models import Clinician
from practice_registry_svc.clinicians.schemas import ClinicianIn
from practice_registry_svc.practices.service import next_version, practice_for_change, practice_for_reading

log = get_logger(__name__)

FIELDS = ("clinician_id", "name", "role", "gender")


async def list_clinicians(session: AsyncSession, principal: Principal, ods_code: str) -> Sequence[Clinician]:
    practice = await practice_for_reading(session, principal, ods_code)
    return await repository.list_for(session, practice.ods_code)


async def replace_clinicians(session: AsyncSession, principal: Principal, ods_code: str,
                             clinicians: list[ClinicianIn]) -> Sequence[Clinician]:
    practice = await practice_for_change(session, principal, ods_code)
    counts = Counter(c.clinician_id for c in clinicians)
    repeated = sorted(cid for cid, n in counts.items() if n > 1)
    if repeated:
        raise Unprocessable(f"Each clinician_id may appear once; repeated: {', '.join(repeated)}.",
                            code="duplicate_clinician_id", clinician_ids=repeated)
    wanted = [c.model_dump(include=set(FIELDS)) for c in clinicians]
    current = [{f: getattr(c, f) for f in FIELDS} for c in await repository.list_for(session, practice.ods_code)]
    if wanted == current:
        return await repository.list_for(session, practice.ods_code)  # the same list again changes nothing
    await repository.replace(session, practice.ods_code, wanted)
    version = next_version(practice)
    await session.flush()
    await record_event(session, CliniciansReplaced(
        ods_code=practice.ods_code, clinicians=[ClinicianData(**c) for c in wanted], version=version,
    ), subject_key=practice.ods_code)
    log.info("clinicians.replaced", ods_code=practice.ods_code, count=len(wanted), version=version)
    return await repository.list_for(session, practice.ods_code)
