"""Practice API keys: `cck_<key_id>_<secret>`. The key id says which row to check; only a SHA-256 of the whole
key is stored (the secret is 256 random bits, so a slow password hash would add nothing but latency)."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from services.auth import Principal
from services.errors import NotFound, Unauthorized
from services.logging import get_logger
from services.timeutil import utcnow

from practice_registry_svc.api_keys import repository
from practice_registry_svc.api_keys.models import ApiKey
from practice_registry_svc.practices.models import Practice
from practice_registry_svc.practices.service import practice_for_reading

log = get_logger(__name__)

KEY_PREFIX = "cck"
_KEY_RE = re.compile(r"^cck_([0-9a-f]{32})_[A-Za-z0-9_-]{43,128}$")


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def issue_key(session: AsyncSession, principal: Principal, ods_code: str) -> tuple[ApiKey, str]:
    practice = await practice_for_reading(session, principal, ods_code)
    key_id = uuid.uuid4().hex
    key = f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
    row = ApiKey(key_id=key_id, ods_code=practice.ods_code, secret_hash=_digest(key), created_at=utcnow(),
                 created_by=principal.subject)
    session.add(row)
    await session.flush()
    log.info("api_key.issued", key_id=key_id, ods_code=practice.ods_code, actor=principal.subject)
    return row, key


async def list_keys(session: AsyncSession, principal: Principal, ods_code: str) -> Sequence[ApiKey]:
    practice = await practice_for_reading(session, principal, ods_code)
    return await repository.list_for(session, practice.ods_code)


async def revoke_key(session: AsyncSession, principal: Principal, ods_code: str, key_id: str) -> None:
    practice = await practice_for_reading(session, principal, ods_code)
    row = await repository.get(session, key_id)
    if row is None or row.ods_code != practice.ods_code:
        raise NotFound(f"Practice {practice.ods_code} has no API key {key_id}.", code="api_key_not_found")
    if row.revoked_at is None:  # revoking twice is harmless and keeps the first time
        row.revoked_at = utcnow()
        await session.flush()
        log.info("api_key.revoked", key_id=key_id, ods_code=practice.ods_code, actor=principal.subject)


async def verify_key(session: AsyncSession, key: str) -> tuple[ApiKey, Practice]:
    """The key's row and practice, or 401 `invalid_api_key` for a malformed, unknown, wrong or revoked key.
    A suspended practice's keys still verify: the centre stops booking for it, but the practice must still
    read its feed (cancellations, what was booked) and keep its data current until it is reinstated."""
    refused = Unauthorized("The API key is not valid.", code="invalid_api_key")
    match = _KEY_RE.match(key)
    if match is None:
        raise refused
    found = await repository.with_practice(session, match.group(1))
    if found is None:
        raise refused
    row, practice = found
    if not hmac.compare_digest(row.secret_hash, _digest(key)) or row.revoked_at is not None:
        raise refused
    return row, practice
