"""Retention: the purge removes (or, dry, counts) what has outlived its period and keeps the rest, on SQLite and
PostgreSQL; `python -m agent_desk_svc purge` does it as a real process in one transaction."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import create_async_engine

from agent_desk_svc.audit.models import AuditRecord
from agent_desk_svc.callbacks.models import CallbackAttempt, CallbackTask
from agent_desk_svc.calls.models import Call
from agent_desk_svc.retention.service import purge
from services.inbox import inbox_table
from services.migrations import upgrade
from services.outbox import outbox_table
from services.timeutil import utcnow
from tests.agent_desk_svc.conftest import Desk, staff
from tests.support.apps import wait_until

ALICE, SUE = staff("alice"), staff("sue", "supervisor")
OLD_NHS, NEW_NHS = "9434765919", "4010232137"
YEAR = timedelta(days=365)
OLD_EVENT, NEW_EVENT = str(uuid.uuid4()), str(uuid.uuid4())


def audit(at: datetime, action: str) -> AuditRecord:
    return AuditRecord(id=str(uuid.uuid4()), service="booking-svc", actor="bob", role="agent", action=action,
                       target_kind="appointment", nhs_number=OLD_NHS, at=at)


async def closed_call(desk: Desk, nhs_number: str, notes: str) -> str:
    call = (await desk.client.post("/api/v1/calls", headers=ALICE, json={"nhs_number": nhs_number})).json()
    closed = await desk.client.patch(f"/api/v1/calls/{call['id']}", headers=ALICE,
                                     json={"disposition": "advice_given", "notes": notes})
    assert closed.status_code == 200, closed.text
    return call["id"]


async def completed_callback(desk: Desk, nhs_number: str) -> str:
    task = (await desk.client.post("/api/v1/callbacks", headers=ALICE, json={
        "ods_code": "A81001", "nhs_number": nhs_number, "reason": "Ring about blood results"})).json()
    url = f"/api/v1/callbacks/{task['id']}"
    await desk.client.patch(url, headers=ALICE, json={"action": "attempt", "note": "no answer"})
    done = await desk.client.patch(url, headers=ALICE, json={"action": "complete", "outcome": "booked a review"})
    assert done.status_code == 200, done.text
    return task["id"]


async def test_purge_removes_what_is_older_than_its_retention_and_keeps_the_rest(desk: Desk) -> None:
    now = utcnow()
    db = desk.app.state.db
    await desk.create_agent("alice")
    await desk.client.put("/api/v1/agents/alice/state", headers=ALICE, json={"state": "available"})
    old_call = await closed_call(desk, OLD_NHS, "chest pain last year, told to ring 999")
    new_call = await closed_call(desk, NEW_NHS, "wants a nurse appointment")
    old_task, new_task = await completed_callback(desk, OLD_NHS), await completed_callback(desk, NEW_NHS)
    open_task = (await desk.client.post("/api/v1/callbacks", headers=ALICE, json={
        "ods_code": "A81001", "nhs_number": OLD_NHS, "reason": "still to ring"})).json()["id"]

    async def relayed() -> bool:
        return await desk.app.state.relay.pending_count() == 0

    await wait_until(relayed)
    async with db.transaction() as session:
        session.add_all([audit(now - 8 * YEAR - timedelta(days=3), "appointment.book"),  # 2922 days is 8 years + 2
                         audit(now - 8 * YEAR + timedelta(days=3), "appointment.cancel")])
        await session.execute(update(Call).where(Call.id == old_call).values(
            started_at=now - 3 * YEAR, closed_at=now - 3 * YEAR + timedelta(minutes=4)))
        await session.execute(update(CallbackTask).where(CallbackTask.id == old_task).values(
            created_at=now - 3 * YEAR, completed_at=now - 3 * YEAR))
        await session.execute(update(CallbackTask).where(CallbackTask.id == open_task).values(
            created_at=now - 3 * YEAR))
        await session.execute(update(outbox_table).values(published_at=now - timedelta(days=45)))
        await session.execute(inbox_table.insert(), [
            {"consumer": "agent-desk-svc", "event_id": event_id, "subject": "booking.x.v1", "processed_at": at}
            for event_id, at in ((OLD_EVENT, now - timedelta(days=45)), (NEW_EVENT, now - timedelta(days=2)))])
        published = await session.scalar(select(func.count()).select_from(outbox_table))
    assert published >= 6  # agent states, calls, callbacks

    expected = {"audit_records_deleted": 1, "calls_redacted": 1, "callbacks_deleted": 1,
                "outbox_events_deleted": published, "inbox_events_deleted": 1}
    async with db.read_transaction() as session:
        dry = await purge(session, desk.settings, now, dry_run=True)
    assert dry.as_dict() == expected
    async with db.read_transaction() as session:  # a dry run changed nothing
        assert len((await session.execute(select(AuditRecord).where(AuditRecord.actor == "bob"))).all()) == 2
        assert (await session.get(Call, old_call)).notes is not None

    async with db.write_transaction() as session:
        counts = await purge(session, desk.settings, now)
    assert counts.as_dict() == expected

    async with db.read_transaction() as session:
        kept = (await session.execute(select(AuditRecord.action).where(AuditRecord.actor == "bob"))).scalars().all()
        assert kept == ["appointment.cancel"]
        assert await session.scalar(select(func.count()).select_from(AuditRecord).where(
            AuditRecord.at < now - timedelta(days=2922))) == 0
        old, new = await session.get(Call, old_call), await session.get(Call, new_call)
        # The old call stays for statistics, without its notes or who it was about.
        assert (old.notes, old.nhs_number, old.disposition, old.agent) == (None, None, "advice_given", "alice")
        assert old.handle_seconds is not None
        assert (new.notes, new.nhs_number) == ("wants a nurse appointment", NEW_NHS)
        tasks = set((await session.execute(select(CallbackTask.id))).scalars())
        assert tasks == {new_task, open_task}  # the old open task is still owed to its patient
        attempts = set((await session.execute(select(CallbackAttempt.callback_id))).scalars())
        assert attempts == {new_task}
        inbox = set((await session.execute(select(inbox_table.c.event_id))).scalars())
        assert NEW_EVENT in inbox and OLD_EVENT not in inbox
        left = (await session.execute(select(outbox_table.c.payload))).scalars().all()
    # What is left in the outbox is the purge's own audit record (published by now, or waiting for the relay).
    assert [json.loads(p)["data"]["action"] for p in left] == ["retention.purge"]
    record = json.loads(left[0])["data"]
    assert record["actor"] == "retention-purge" and record["result_count"] == sum(expected.values())
    assert OLD_NHS not in desk.logs.getvalue()


def run_purge(database_url: str, *args: str) -> dict:
    env = {**os.environ, "DESK_DATABASE_URL": database_url, "DESK_LOG_LEVEL": "WARNING"}
    done = subprocess.run([sys.executable, "-m", "agent_desk_svc", "purge", *args], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr + done.stdout
    return json.loads(done.stdout.strip().splitlines()[-1])


async def test_the_purge_command_runs_as_a_process(database_url: str) -> None:
    await asyncio.to_thread(upgrade, "agent_desk_svc", database_url)
    engine = create_async_engine(database_url)
    now = utcnow()
    try:
        async with engine.begin() as conn:
            await conn.execute(AuditRecord.__table__.insert(), [
                {"id": str(uuid.uuid4()), "service": "registry", "actor": "bob", "role": "agent",
                 "action": "patient.lookup", "target_kind": "patient", "at": now - 9 * YEAR},
                {"id": str(uuid.uuid4()), "service": "registry", "actor": "bob", "role": "agent",
                 "action": "patient.lookup", "target_kind": "patient", "at": now - YEAR}])

        dry = await asyncio.to_thread(run_purge, database_url, "--dry-run")
        assert dry == {"purge": "dry_run", "audit_records_deleted": 1, "calls_redacted": 0, "callbacks_deleted": 0,
                       "outbox_events_deleted": 0, "inbox_events_deleted": 0}
        done = await asyncio.to_thread(run_purge, database_url)
        assert done == {**dry, "purge": "done"}
        async with engine.connect() as conn:
            ages = (await conn.execute(select(AuditRecord.at))).scalars().all()
            pending = (await conn.execute(select(outbox_table.c.subject))).scalars().all()
        assert len(ages) == 1 and pending == ["desk.audit.recorded.v1"]

        refused = subprocess.run([sys.executable, "-m", "agent_desk_svc", "purge", "--everything"],
                                 env={**os.environ, "DESK_DATABASE_URL": database_url}, capture_output=True,
                                 text=True, timeout=120)
        assert refused.returncode != 0 and "usage" in refused.stderr
    finally:
        await engine.dispose()


async def test_the_audit_trail_is_append_only_through_the_api(desk: Desk) -> None:
    """Only the consumer adds audit records and only the purge removes them: the API reads, nothing else."""
    methods = {m for route in desk.app.routes if getattr(route, "path", "").startswith("/api/v1/audit")
               for m in getattr(route, "methods", ())}
    assert methods <= {"GET", "HEAD"}
    admin = staff("adam", "admin")
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        for path in ("/api/v1/audit", "/api/v1/audit/some-record-id"):
            response = await desk.client.request(method, path, headers=admin, json={})
            assert response.status_code in (404, 405), (method, path)
