"""Cursors over (time, id) orderings, on top of the kernel's opaque cursor encoding."""

from __future__ import annotations

from datetime import datetime

from services.errors import Unprocessable
from services.pagination import decode_cursor, encode_cursor
from services.timeutil import as_utc


def time_cursor(at: datetime, row_id: str) -> str:
    return encode_cursor({"at": as_utc(at).isoformat(), "id": row_id})


def read_time_cursor(cursor: str | None) -> tuple[datetime, str] | None:
    position = decode_cursor(cursor)
    if position is None:
        return None
    try:
        return as_utc(datetime.fromisoformat(str(position["at"]))), str(position["id"])
    except (KeyError, ValueError) as exc:
        raise Unprocessable("The cursor is not one this service issued.", code="invalid_cursor") from exc
