"""The app factory: one commit per request before the response, problem+json, request ids, limits, health."""

from __future__ import annotations

import asyncio
import json
from contextlib import asynccontextmanager
from datetime import datetime, timezone

import httpx
import pytest
from fastapi import Request
from pydantic import BaseModel
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from services.app import DbSession, WritesOnRead, create_app, service_router
from services.auth import CurrentPrincipal
from services.contracts.desk import CallStarted
from services import db as kernel_db
from services.db import Database, ReadOnlyWrite, kernel_metadata
from services.errors import Conflict
from services.outbox import outbox_table, record_event
from services.settings import ServiceSettings
from tests.support.apps import AGENT
from tests.support.databases import create_database, drop_database


class Body(BaseModel):
    call_id: str
    fail: bool = False


def build(settings: ServiceSettings):
    router = service_router(prefix="/api/v1/things")

    @router.post("", status_code=201)
    async def create(body: Body, session: DbSession, principal: CurrentPrincipal) -> dict:
        await record_event(session, CallStarted(call_id=body.call_id, agent=principal.subject,
                                                started_at=datetime.now(timezone.utc)), subject_key="A81001")
        if body.fail:
            raise Conflict("no", code="thing_conflict")
        return {"call_id": body.call_id}

    @router.get("/cast")
    async def cast_to_integer(session: DbSession, value: int, q: str | None = None) -> dict:
        # A value the database itself refuses on PostgreSQL (int4 out of range); SQLite's integers are 64-bit.
        return {"value": (await session.execute(text("SELECT CAST(:v AS INTEGER)"), {"v": value})).scalar_one()}

    @router.get("/count")
    async def count(session: DbSession) -> dict:
        n = (await session.execute(select(func.count()).select_from(outbox_table))).scalar_one()
        return {"events": n}

    @router.get("/undeclared-event")
    async def undeclared_event(session: DbSession, principal: CurrentPrincipal) -> dict:
        await record_event(session, CallStarted(call_id="r1", agent=principal.subject,
                                                started_at=datetime.now(timezone.utc)), subject_key="A81001")
        return {}

    @router.get("/undeclared-update")
    async def undeclared_update(session: DbSession) -> dict:
        await session.execute(outbox_table.update().values(subject="changed"))
        return {}

    async def transaction_ids(session: AsyncSession) -> list[int]:
        return [(await session.execute(text("SELECT txid_current()"))).scalar_one() for _ in range(2)]

    @router.get("/transactions")
    async def transactions(session: DbSession) -> list[int]:
        return await transaction_ids(session)

    @router.get("/transactions-declared", dependencies=[WritesOnRead])
    async def transactions_declared(session: DbSession) -> list[int]:
        return await transaction_ids(session)

    @router.get("/held")
    async def held(session: DbSession, request: Request) -> dict:
        await session.execute(text("SELECT 1"))
        await request.app.state.release.wait()  # holds its turn at the pool until the test lets it go
        return {}

    return create_app(settings, title="test", routers=[router])


@asynccontextmanager
async def running(database_url: str, nats_url: str):
    settings = ServiceSettings(service_name="test-svc", database_url=database_url, nats_url=nats_url)
    app = build(settings)
    async with app.router.lifespan_context(app):
        async with app.state.db.engine.begin() as conn:
            await conn.run_sync(kernel_metadata.create_all)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            yield c


@pytest.fixture
async def client(database_url: str, nats_url: str):
    async with running(database_url, nats_url) as c:
        yield c


async def test_a_get_that_writes_without_declaring_it_is_refused_and_writes_nothing(client: httpx.AsyncClient):
    """A plain GET gets a read-only session (autocommit on PostgreSQL, where writes would not be atomic)."""
    assert (await client.post("/api/v1/things", json={"call_id": "c1"}, headers=AGENT)).status_code == 201
    with pytest.raises(ReadOnlyWrite):
        await client.get("/api/v1/things/undeclared-event", headers=AGENT)
    with pytest.raises(ReadOnlyWrite):
        await client.get("/api/v1/things/undeclared-update")
    assert (await client.get("/api/v1/things/count", headers=AGENT)).json() == {"events": 1}


async def test_on_postgresql_a_plain_get_runs_without_begin_and_commit(nats_url: str, tmp_path):
    """Each statement of a read-only request is its own transaction (no BEGIN/COMMIT round trips); a GET that
    declares WritesOnRead keeps one transaction for all its statements."""
    url = create_database("postgresql", "readonly", tmp_path)
    try:
        async with running(url, nats_url) as c:
            first, second = (await c.get("/api/v1/things/transactions")).json()
            assert first != second
            first, second = (await c.get("/api/v1/things/transactions-declared")).json()
            assert first == second
    finally:
        drop_database(url)


async def test_success_commits_and_a_domain_error_rolls_back_with_problem_json(client: httpx.AsyncClient):
    ok = await client.post("/api/v1/things", json={"call_id": "c1"}, headers=AGENT)
    assert ok.status_code == 201
    refused = await client.post("/api/v1/things", json={"call_id": "c2", "fail": True}, headers=AGENT)
    assert refused.status_code == 409
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == "thing_conflict" and refused.json()["status"] == 409
    assert (await client.get("/api/v1/things/count", headers=AGENT)).json() == {"events": 1}


async def test_bad_input_is_a_clear_4xx_that_does_not_echo_the_input(client: httpx.AsyncClient):
    malformed = await client.post("/api/v1/things", content=b"{not json", headers={**AGENT, "content-type": "application/json"})
    assert malformed.status_code == 400 and malformed.json()["code"] == "malformed_json"
    wrong = await client.post("/api/v1/things", json={"call_id": 9434765919}, headers=AGENT)
    assert wrong.status_code == 422 and "9434765919" not in wrong.text
    assert (await client.get("/api/v1/things/count", headers=AGENT)).json() == {"events": 0}


async def test_nul_characters_are_refused_wherever_text_comes_in_and_change_nothing(client: httpx.AsyncClient):
    # PostgreSQL cannot store U+0000 in text (it was a 503) and SQLite stored it: now a 422 before anything runs.
    for body in ({"call_id": "a\u0000b"}, {"call_id": "c1", "fail": False, "\u0000": 1}):
        refused = await client.post("/api/v1/things", json=body, headers=AGENT)
        assert refused.status_code == 422, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["code"] == "validation_error" and refused.json()["errors"][0]["loc"][0] == "body"
    in_query = await client.get("/api/v1/things/count", params={"q": "\u0000"}, headers=AGENT)
    assert in_query.status_code == 422 and in_query.json()["errors"][0]["loc"] == ["query"]
    # An escaped backslash followed by "u0000" is ordinary text, not a NUL.
    literal = await client.post("/api/v1/things", content=b'{"call_id": "a\\\\u0000"}',
                                headers={**AGENT, "content-type": "application/json"})
    assert literal.status_code == 201 and literal.json() == {"call_id": "a\\u0000"}
    assert (await client.get("/api/v1/things/count", headers=AGENT)).json() == {"events": 1}


async def test_a_value_the_database_refuses_is_a_422_not_an_outage(client: httpx.AsyncClient, database_url: str):
    r = await client.get("/api/v1/things/cast", params={"value": 2**40}, headers=AGENT)
    if database_url.startswith("postgresql"):
        assert r.status_code == 422, r.text
        assert r.headers["content-type"] == "application/problem+json" and r.json()["code"] == "invalid_value"
    else:
        assert r.status_code == 200 and r.json() == {"value": 2**40}


async def test_identity_is_required_and_must_verify(client: httpx.AsyncClient):
    assert (await client.post("/api/v1/things", json={"call_id": "x"})).status_code == 401
    forged = await client.post("/api/v1/things", json={"call_id": "x"}, headers={"X-Callcentre-Identity": "eyJhbGciOiJub25lIn0.e30."})
    assert forged.status_code == 401 and forged.json()["code"] == "invalid_identity"


async def test_request_id_in_and_out_and_body_limit(client: httpx.AsyncClient):
    r = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    assert len((await client.get("/healthz")).headers["x-request-id"]) == 32
    big = await client.post("/api/v1/things", content=b"x" * (10 * 1024 * 1024 + 1), headers=AGENT)
    assert big.status_code == 413 and big.json()["code"] == "payload_too_large"
    assert (await client.get("/nowhere")).headers["content-type"] == "application/problem+json"


async def test_ready_health_and_metrics(client: httpx.AsyncClient):
    from tests.support.apps import wait_until

    async def ready() -> bool:
        return (await client.get("/readyz")).status_code == 200

    await wait_until(ready)
    assert (await client.get("/healthz")).json()["status"] == "ok"
    await client.get("/api/v1/things/count", headers=AGENT)
    metrics = (await client.get("/metrics")).text
    assert 'http_requests_total{method="GET",route="/api/v1/things/count",service="test-svc",status="200"}' in metrics


async def test_requests_get_their_turn_at_the_pool_in_arrival_order(tmp_path):
    """A turn given back goes to the longest waiter, even if its holder asks again at once without yielding.
    SQLAlchemy's pool would hand it to the one asking right now and send the woken waiter to the back of the
    queue, which left a few bookings waiting 8 s in a closed-loop rush while most took 0.1 s."""
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/turns.db", producer="test", pool_size=1)
    order: list[str] = []
    let_go = asyncio.Event()

    async def first() -> None:
        async with db.request_slot():
            order.append("first")
            await let_go.wait()
        async with db.request_slot():  # straight back, in the same step as giving the turn back
            order.append("first again")

    async def waiter(name: str) -> None:
        async with db.request_slot():
            order.append(name)

    tasks = [asyncio.create_task(first())]
    await asyncio.sleep(0)
    tasks += [asyncio.create_task(waiter("second")), asyncio.create_task(waiter("third"))]
    await asyncio.sleep(0.05)
    assert order == ["first"]
    let_go.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert order == ["first", "second", "third", "first again"]
    await db.dispose()


async def test_a_request_that_cannot_get_a_turn_at_the_pool_in_time_is_a_503(
        database_url: str, nats_url: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(kernel_db, "POOL_TIMEOUT_SECONDS", 0.3)
    settings = ServiceSettings(service_name="test-svc", database_url=database_url, nats_url=nats_url,
                               database_pool_size=1)
    app = build(settings)
    async with app.router.lifespan_context(app):
        async with app.state.db.engine.begin() as conn:
            await conn.run_sync(kernel_metadata.create_all)
        app.state.release = asyncio.Event()
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            holder = asyncio.create_task(c.get("/api/v1/things/held"))
            await asyncio.sleep(0.1)
            refused = await c.get("/api/v1/things/held")
            assert refused.status_code == 503 and refused.json()["code"] == "dependency_unavailable"
            assert refused.headers["retry-after"] == "2"
            app.state.release.set()
            assert (await holder).status_code == 200
            assert (await c.get("/api/v1/things/count")).status_code == 200  # the turn was given back


async def test_readiness_is_false_without_nats(database_url: str):
    settings = ServiceSettings(service_name="test-svc", database_url=database_url, nats_url="nats://127.0.0.1:1")
    app = build(settings)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            r = await c.get("/readyz")
            assert r.status_code == 503 and r.json()["checks"]["nats"] == "unavailable"
            assert (await c.get("/healthz")).status_code == 200  # alive, and serving, without NATS


async def test_each_request_writes_one_access_line_without_the_query_or_a_patients_number(
        client: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]):
    capsys.readouterr()
    response = await client.get("/api/v1/things/cast", params={"value": 1, "q": "9434765919"},
                                headers={**AGENT, "X-Request-ID": "9434765919"})
    assert response.status_code == 200
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"http.request"' in line]
    assert len(lines) == 1
    assert lines[0] == {**lines[0], "event": "http.request", "service": "test-svc", "method": "GET",
                        "route": "/api/v1/things/cast", "status": 200, "request_id": "*******919"}
    assert "9434765919" not in json.dumps(lines) and "q=" not in json.dumps(lines)
    # Without an id of its own, the caller is given one, and the log line carries that same id.
    response = await client.get("/api/v1/things/cast", params={"value": 1}, headers=AGENT)
    made = response.headers["x-request-id"]
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"http.request"' in line]
    assert [line["request_id"] for line in lines] == [made]
