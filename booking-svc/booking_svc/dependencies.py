"""Request-level dependencies shared by this service's routers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request

from services.db import sqlite_write_intent


def _now(request: Request) -> datetime:
    # One clock for the whole service (app.state.clock), so tests can move time instead of sleeping.
    return request.app.state.clock()


Now = Annotated[datetime, Depends(_now)]


async def _writes_audit_record() -> None:
    # A GET that reads patient data also writes its audit record. On SQLite a read transaction cannot be
    # upgraded to a write one safely, so such a GET starts as a write transaction (BEGIN IMMEDIATE).
    # Async on purpose: it must run in the request's own context for the flag to reach the session.
    sqlite_write_intent.set(True)


AuditedRead = Depends(_writes_audit_record)
