"""Registered patients: bulk uploads from practices, and lookups by the centre's staff.

An upload applies its valid rows and reports each invalid one with its NHS number (as sent) and the reason.
Registration is one practice at a time: a patient uploaded by a new practice moves there, and the old practice
is told (a deregistration). booking-svc hears only what it needs to check a registration: NHS number and birth
date, in chunks of at most 1,000 NHS numbers per event, and only for rows whose registration changed."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from services.audit import audit_record, audit_subject, record_audit
from services.auth import Principal
from services.contracts.audit import RegistryAuditRecorded
from services.contracts.registry import PatientsSynced, Registration
from services.errors import Unprocessable
from services.groupcommit import RUN_ALONE, Batch
from services.logging import get_logger, mask_nhs_number
from services.nhs import normalise_nhs_number
from services.outbox import record_event
from services.timeutil import LONDON, utcnow

from practice_registry_svc.patients import repository
from practice_registry_svc.patients.repository import DETAIL_COLUMNS
from practice_registry_svc.patients.schemas import (LookupResult, PatientMatch, RegisteredPractice, RejectedRow,
                                                     UploadResult)
from practice_registry_svc.patients.search_keys import name_key, postcode_key
from practice_registry_svc.practices.models import Practice
from practice_registry_svc.practices.service import practice_for_change

log = get_logger(__name__)

NHS_NUMBERS_PER_EVENT = 1000
UploadMode = Literal["upsert", "replace"]

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# UK postcodes, outward code + inward code (BFPO and overseas territories' formats included by shape).
_POSTCODE = re.compile(r"^[A-Z]{1,2}[0-9][A-Z0-9]?[0-9][A-Z]{2}$")
_PHONE = re.compile(r"^\+?[0-9][0-9 ()\-]{4,29}$")
GENDERS = frozenset({"female", "male", "other", "unknown"})
OLDEST_BIRTH_DATE = date(1890, 1, 1)
MAX_NAME = 100


class RowRejected(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --------------------------------------------------------------------------------------------- row checks

def _shown_nhs_number(raw: Any) -> str | None:
    """The row's NHS number as the practice sent it, so it can find the row it must fix."""
    value = raw.get("nhs_number") if isinstance(raw, dict) else None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    shown = str(value)[:32]
    # A lone surrogate cannot be written out as JSON: shown as "?" so the report itself does not fail.
    return shown if shown.isascii() else shown.encode("utf-8", "replace").decode()


def _nhs_number(raw: Any) -> str:
    if not isinstance(raw, dict):
        raise RowRejected("the row is not an object")
    value = raw.get("nhs_number")
    if value is None or value == "":
        raise RowRejected("nhs_number is missing")
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise RowRejected("nhs_number must be a string of 10 digits")
    try:
        return normalise_nhs_number(str(value))
    except ValueError as exc:
        raise RowRejected(f"invalid NHS number: {exc}") from None


def _text(raw: dict, field: str, *, required: bool, limit: int) -> str | None:
    value = raw.get(field)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise RowRejected(f"{field} is missing")
        return None
    if not isinstance(value, str):
        raise RowRejected(f"{field} must be text")
    if not value.isascii():
        try:
            value.encode()
        except UnicodeEncodeError:  # a lone surrogate (JSON lets "\ud800" through): no database can store it
            raise RowRejected(f"{field} is not valid text") from None
    value = " ".join(value.split())
    if len(value) > limit:
        raise RowRejected(f"{field} is longer than {limit} characters")
    return value


def _birth_date(raw: dict, today: date) -> date:
    value = raw.get("birth_date")
    if value is None or value == "":
        raise RowRejected("birth_date is missing")
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        raise RowRejected("birth_date must be a date written YYYY-MM-DD")
    try:
        born = date.fromisoformat(value)
    except ValueError:
        raise RowRejected("birth_date is not a real date") from None
    if born > today:
        raise RowRejected("birth_date is in the future")
    if born < OLDEST_BIRTH_DATE:
        raise RowRejected(f"birth_date is before {OLDEST_BIRTH_DATE.isoformat()}")
    return born


def _details(raw: dict, nhs_number: str, today: date) -> dict[str, Any]:
    family = _text(raw, "family", required=True, limit=MAX_NAME)
    given = _text(raw, "given", required=True, limit=MAX_NAME)
    assert family is not None and given is not None
    born = _birth_date(raw, today)
    gender = _text(raw, "gender", required=False, limit=10)
    if gender is not None:
        gender = gender.lower()
        if gender not in GENDERS:
            raise RowRejected(f"gender must be one of {', '.join(sorted(GENDERS))}")
    postcode = _text(raw, "postcode", required=False, limit=10)
    postcode_search = None
    if postcode is not None:
        postcode_search = postcode_key(postcode)
        if not _POSTCODE.match(postcode_search):
            raise RowRejected("postcode is not a UK postcode")
        postcode = f"{postcode_search[:-3]} {postcode_search[-3:]}"
    phone = _text(raw, "phone", required=False, limit=30)
    if phone is not None and not _PHONE.match(phone):
        raise RowRejected("phone may hold only digits, spaces, brackets, hyphens and a leading +")
    family_search, given_search = name_key(family), name_key(given)
    if not family_search:
        raise RowRejected("family has no letters")
    return {"nhs_number": nhs_number, "family": family, "given": given, "birth_date": born, "gender": gender,
            "postcode": postcode, "phone": phone, "family_key": family_search, "given_key": given_search,
            "postcode_key": postcode_search}


def _chunked(items: Sequence[Any], size: int = NHS_NUMBERS_PER_EVENT):
    for start in range(0, len(items), size):
        yield list(items[start:start + size])


# --------------------------------------------------------------------------------------------- upload

async def upload_patients(session: AsyncSession, principal: Principal, ods_code: str, rows: list[Any], *,
                          mode: UploadMode) -> UploadResult:
    # Locking the practice row serialises two uploads for one practice (PostgreSQL; SQLite has one writer).
    practice = await practice_for_change(session, principal, ods_code)
    ods_code = practice.ods_code
    today = datetime.now(LONDON).date()
    now = utcnow()

    rejected: list[RejectedRow] = []
    numbers: list[str | None] = []
    for index, raw in enumerate(rows):
        try:
            numbers.append(_nhs_number(raw))
        except RowRejected as exc:
            numbers.append(None)
            rejected.append(RejectedRow(index=index, nhs_number=_shown_nhs_number(raw), reason=exc.reason))
    # Rows whose NHS number is sound stay registered in replace mode even if something else in them is wrong:
    # a typo in a name must not deregister the patient.
    present = {n for n in numbers if n is not None}
    # Two rows for one patient: we cannot tell which is right, so neither is applied.
    counts = Counter(n for n in numbers if n is not None)
    records: list[dict[str, Any]] = []
    for index, (raw, number) in enumerate(zip(rows, numbers)):
        if number is None:
            continue
        if counts[number] > 1:
            rejected.append(RejectedRow(index=index, nhs_number=_shown_nhs_number(raw),
                                        reason=f"the NHS number appears in {counts[number]} rows of this upload"))
            continue
        try:
            records.append(_details(raw, number, today))
        except RowRejected as exc:
            rejected.append(RejectedRow(index=index, nhs_number=_shown_nhs_number(raw), reason=exc.reason))
    rejected.sort(key=lambda r: r.index)

    existing = await repository.current_registrations(session, [r["nhs_number"] for r in records])
    to_write: list[dict[str, Any]] = []
    registered: list[Registration] = []
    moved_away: dict[str, list[str]] = defaultdict(list)
    created = transferred_in = updated = unchanged = 0
    for record in records:
        before = existing.get(record["nhs_number"])
        if before is None or before.ods_code != ods_code:
            created += 1
            if before is not None:
                transferred_in += 1
                moved_away[before.ods_code].append(record["nhs_number"])
            registered.append(Registration(nhs_number=record["nhs_number"], birth_date=record["birth_date"]))
        elif all(getattr(before, column) == record[column] for column in DETAIL_COLUMNS):
            unchanged += 1
            continue
        else:
            updated += 1
            if before.birth_date != record["birth_date"]:  # booking checks registrations by birth date too
                registered.append(Registration(nhs_number=record["nhs_number"], birth_date=record["birth_date"]))
        to_write.append({**record, "ods_code": ods_code, "updated_at": now})

    removed: list[str] = []
    if mode == "replace":
        removed = sorted(await repository.nhs_numbers_at(session, ods_code) - present)
        if removed and not records:
            # Most likely a broken export: refuse rather than deregister the practice's patients.
            raise Unprocessable("No row of this replace upload is valid, so it would only remove patients.",
                                code="replace_would_empty", rejected=[r.model_dump() for r in rejected[:100]])
        await repository.remove(session, ods_code, removed)
    # In NHS-number order, so two uploads touching the same patients lock rows in the same order (no deadlock).
    await repository.upsert(session, sorted(to_write, key=lambda r: r["nhs_number"]))
    practice.patients_synced_at = now

    # Deregistrations at the old practices first, then this practice's registrations.
    for old_ods, nhs_numbers in sorted(moved_away.items()):
        for chunk in _chunked(sorted(nhs_numbers)):
            await record_event(session, PatientsSynced(ods_code=old_ods, registered=[], deregistered=chunk),
                               subject_key=old_ods)
    for chunk in _chunked(registered):
        await record_event(session, PatientsSynced(ods_code=ods_code, registered=chunk), subject_key=ods_code)
    for chunk in _chunked(removed):
        await record_event(session, PatientsSynced(ods_code=ods_code, registered=[], deregistered=chunk),
                           subject_key=ods_code)

    result = UploadResult(received=len(rows), created=created, transferred_in=transferred_in, updated=updated,
                          unchanged=unchanged, removed=len(removed), rejected=rejected)
    log.info("patients.uploaded", ods_code=ods_code, mode=mode, received=result.received, created=created,
             transferred_in=transferred_in, updated=updated, unchanged=unchanged, removed=result.removed,
             rejected=len(rejected))
    return result


# --------------------------------------------------------------------------------------------- lookup

def _match(patient: Any, practice: Practice) -> PatientMatch:
    return PatientMatch(
        nhs_number=patient.nhs_number, family=patient.family, given=patient.given, birth_date=patient.birth_date,
        gender=patient.gender, postcode=patient.postcode, phone=patient.phone,
        practice=RegisteredPractice(ods_code=practice.ods_code, name=practice.name, pcn=practice.pcn_code,
                                    status=practice.status, phone=practice.phone,
                                    notes_for_agents=practice.notes_for_agents, opening_hours=practice.opening_hours),
    )


def _present(value: str | None) -> str | None:
    return value.strip() if value is not None and value.strip() else None


async def find_patients(session: AsyncSession, principal: Principal, *, nhs_number: str | None, family: str | None,
                        birth_date: str | None, postcode: str | None, given: str | None,
                        max_results: int) -> LookupResult:
    """Every lookup, found or not, is audited: who searched, how, on whose behalf, and how many matched."""
    searched = by_nhs_number(nhs_number=nhs_number, family=family, birth_date=birth_date, postcode=postcode,
                             given=given)
    if searched is not None:
        query_kind = "nhs_number"
        found = await repository.find_by_nhs_number(session, searched)
        truncated = False
    else:
        family, birth_date, postcode, given = _present(family), _present(birth_date), _present(postcode), _present(given)
        if family is None or birth_date is None:
            raise Unprocessable("Search by nhs_number, or by family and birth_date together (postcode and given "
                                "narrow the search).", code="incomplete_query")
        if not _ISO_DATE.match(birth_date):
            raise Unprocessable("birth_date must be a date written YYYY-MM-DD.", code="invalid_birth_date")
        try:
            born = date.fromisoformat(birth_date)
        except ValueError:
            raise Unprocessable("birth_date is not a real date.", code="invalid_birth_date") from None
        family_search = name_key(family)
        if not family_search:
            raise Unprocessable("family must contain letters.", code="incomplete_query")
        query_kind = "demographics"
        found = await repository.find_by_demographics(
            session, family_key=family_search, birth_date=born,
            postcode_key=postcode_key(postcode) if postcode else None,
            given_key=name_key(given) if given else None, limit=max_results + 1)
        truncated = len(found) > max_results
        found = found[:max_results]
    items = [_match(patient, practice) for patient, practice in found]
    await record_audit(session, RegistryAuditRecorded, principal, **_lookup_audit(items, searched, query_kind, truncated))
    _log_lookup(items, searched, query_kind, truncated)
    return LookupResult(items=items, ambiguous=len(items) > 1, truncated=truncated)


def by_nhs_number(*, nhs_number: str | None, family: str | None, birth_date: str | None, postcode: str | None,
                  given: str | None) -> str | None:
    """The NHS number a lookup is by (normalised), or None for a lookup by demographics; refuses one that is both,
    or whose NHS number is not valid."""
    nhs_number = _present(nhs_number)
    if nhs_number is None:
        return None
    if any(_present(v) is not None for v in (family, birth_date, postcode, given)):
        raise Unprocessable("Search by nhs_number, or by family and birth_date, not both.", code="conflicting_query")
    try:
        return normalise_nhs_number(nhs_number)
    except ValueError as exc:
        raise Unprocessable(f"That is not a valid NHS number: {exc}.", code="invalid_nhs_number") from None


@dataclass(frozen=True)
class LookupRequest:
    """A lookup, as the group commit carries it (practice_registry_svc.main, services.groupcommit): by NHS number
    (`searched`, valid), or anything else in `query` (for the one-request path)."""

    principal: Principal
    searched: str | None
    query: dict[str, str | None]
    max_results: int
    correlation_id: str | None


async def find_one(session: AsyncSession, request: LookupRequest) -> LookupResult:
    """A lookup on its own: `find_patients` in a transaction of its own (SQLite, demographics, or what
    `find_batch` leaves)."""
    return await find_patients(session, request.principal, **request.query, max_results=request.max_results)


async def find_batch(batch: Batch, requests: Sequence[LookupRequest]) -> list[Any]:
    """Many lookups by NHS number in one transaction with their audit records (PostgreSQL; services.groupcommit
    commits it), one round trip for every number; a lookup by demographics goes the one-request path."""
    wanted = sorted({r.searched for r in requests if r.searched is not None})
    found = await repository.find_by_nhs_number_each(batch, wanted)
    outcomes: list[Any] = []
    for request in requests:
        if request.searched is None:
            outcomes.append(RUN_ALONE)
            continue
        items = [_match(*found[request.searched])] if request.searched in found else []
        audited = _lookup_audit(items, request.searched, "nhs_number", False)
        batch.record_event(audit_record(RegistryAuditRecorded, request.principal, **audited),
                           subject_key=audit_subject(request.principal, audited["on_behalf_of"]),
                           correlation_id=request.correlation_id)
        _log_lookup(items, request.searched, "nhs_number", False, request_id=request.correlation_id)
        outcomes.append(LookupResult(items=items, ambiguous=False, truncated=False))
    return outcomes


def _lookup_audit(items: list[PatientMatch], searched: str | None, query_kind: str, truncated: bool) -> dict[str, Any]:
    single = items[0] if len(items) == 1 else None
    return {"action": "patient.lookup", "target_kind": "patient", "target_id": single.nhs_number if single else None,
            "on_behalf_of": single.practice.ods_code if single else None,
            "nhs_number": searched or (single.nhs_number if single else None), "query_kind": query_kind,
            "result_count": len(items), "detail": "more matched than were shown" if truncated else None}


def _log_lookup(items: list[PatientMatch], searched: str | None, query_kind: str, truncated: bool,
                **request: str | None) -> None:
    """`request`: in a batch, the lookup's own request_id (the task running the batch has another's)."""
    log.info("patients.lookup", query_kind=query_kind, result_count=len(items), truncated=truncated,
             searched=mask_nhs_number(searched) if searched else None, **request)
