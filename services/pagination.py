"""Listings: `{items, next_cursor}` with an opaque cursor; `limit` is capped (never an error or a 5xx)."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

import orjson
from fastapi import Query
from pydantic import BaseModel

from services.errors import Unprocessable
from services.timeutil import as_utc

MAX_LIMIT = 500
DEFAULT_LIMIT = 100

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


def clamp_limit(limit: int | None, default: int = DEFAULT_LIMIT, maximum: int = MAX_LIMIT) -> int:
    if limit is None:
        return default
    return max(1, min(limit, maximum))


Limit = Annotated[int | None, Query(ge=1, description=f"Page size; values above {MAX_LIMIT} are capped")]


def encode_cursor(position: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(position)).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> dict[str, Any] | None:
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
    except Exception as exc:  # noqa: BLE001
        raise Unprocessable("The cursor is not one this service issued.", code="invalid_cursor") from exc
    if not isinstance(value, dict):
        raise Unprocessable("The cursor is not one this service issued.", code="invalid_cursor")
    return value


def encode_time_cursor(at: datetime, row_id: str) -> str:
    """Keyset position in a listing ordered by (time, id)."""
    return encode_cursor({"at": as_utc(at).isoformat(), "id": row_id})


def decode_time_cursor(cursor: str | None) -> tuple[datetime, str] | None:
    position = decode_cursor(cursor)
    if position is None:
        return None
    try:
        return as_utc(datetime.fromisoformat(str(position["at"]))), str(position["id"])
    except (KeyError, TypeError, ValueError) as exc:
        raise Unprocessable("The cursor is not one this service issued.", code="invalid_cursor") from exc
