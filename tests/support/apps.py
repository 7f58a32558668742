"""Run a service app in-process against a real database and a real nats-server, and call it with httpx."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI

from services.auth import IDENTITY_HEADER, Principal, sign_identity
from services.migrations import upgrade
from services.settings import DEV_SECRET


def identity(role: str, subject: str | None = None, ods_code: str | None = None,
             secret: str = DEV_SECRET) -> dict[str, str]:
    """Headers a request would carry after the gateway authenticated it. Valid for a day, so module-level
    constants outlive a long test session (the gateway's own tokens live two minutes)."""
    principal = Principal(subject=subject or f"test-{role}", role=role, ods_code=ods_code)
    return {IDENTITY_HEADER: sign_identity(principal, secret, ttl_seconds=86_400)}


ADMIN = identity("admin", "admin")
AGENT = identity("agent", "agent1")
SUPERVISOR = identity("supervisor", "super1")


def practice(ods_code: str) -> dict[str, str]:
    return identity("practice", f"key-{ods_code}", ods_code)


@asynccontextmanager
async def running_service(package: str, build_app: Callable[[Any], FastAPI], settings: Any) -> AsyncIterator[
        tuple[FastAPI, httpx.AsyncClient]]:
    """Migrate the service's database with alembic, start the app's lifespan, yield (app, client)."""
    await asyncio.to_thread(upgrade, package, settings.database_url)
    app = build_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield app, client


async def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05) -> Any:
    """Poll an (async or sync) predicate until it returns something truthy."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)


async def consumer_drained(js: Any, stream: str, durable: str) -> bool:
    """True once the durable consumer has had everything published so far acknowledged (False while the consumer,
    created by a task that has only just started, does not exist yet)."""
    from nats.js.errors import NotFoundError

    try:
        info = await js.consumer_info(stream, durable)
    except NotFoundError:
        return False
    return info.num_pending == 0 and info.num_ack_pending == 0
