"""Graceful shutdown and readiness with real processes: a service on SIGTERM finishes in-flight requests,
flushes its outbox, closes NATS and exits within 20 s; readiness is false while NATS is unreachable."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import nats
import pytest
from sqlalchemy import create_engine, text

from callcentre.seed import synthetic_nhs_numbers
from services.migrations import upgrade
from tests.support.apps import ADMIN, practice
from tests.support.natsserver import NatsServer, free_port


@pytest.fixture
def registry_process(tmp_path: Path, nats_server: NatsServer):
    db_path = tmp_path / "registry.db"
    url = f"sqlite+aiosqlite:///{db_path}"
    upgrade("practice_registry_svc", url)
    port = free_port()
    env = {**os.environ, "REGISTRY_DATABASE_URL": url, "REGISTRY_PORT": str(port),
           "CALLCENTRE_NATS_URL": nats_server.url}
    log = open(tmp_path / "registry.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "practice_registry_svc", "serve"], env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    else:
        proc.kill()
        raise AssertionError((tmp_path / "registry.log").read_text()[-3000:])
    yield proc, base, db_path
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def unpublished(db_path: Path) -> int:
    engine = create_engine(f"sqlite:///{db_path}")
    with engine.connect() as conn:
        n = conn.execute(text("SELECT count(*) FROM outbox WHERE published_at IS NULL")).scalar_one()
    engine.dispose()
    return int(n)


async def stream_count(url: str) -> int:
    nc = await nats.connect(url)
    try:
        return (await nc.jetstream().stream_info("REGISTRY")).state.messages
    finally:
        await nc.close()


async def test_sigterm_finishes_in_flight_work_flushes_the_outbox_and_exits(registry_process, nats_server):
    proc, base, db_path = registry_process
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        assert (await client.post("/api/v1/practices", json={"ods_code": "A81001", "name": "Surgery"},
                                  headers=ADMIN)).status_code == 201
        rows = [{"nhs_number": n, "family": "Smith", "given": "Al", "birth_date": "1970-01-01"}
                for n in synthetic_nhs_numbers(5000)]
        upload = asyncio.create_task(client.put("/api/v1/practices/A81001/patients", json=rows,
                                                headers=practice("A81001")))
        await asyncio.sleep(0.3)  # the upload is being processed
        sent_at = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        response = await upload
    assert response.status_code == 200, response.text  # the in-flight request finished
    assert response.json()["created"] == 5000
    code = await asyncio.to_thread(proc.wait, 25)
    took = time.monotonic() - sent_at
    # uvicorn re-raises the signal after its graceful shutdown, so the exit status is "terminated by SIGTERM"
    assert code in (0, -signal.SIGTERM)
    assert '"event": "service.stopped"' in (db_path.parent / "registry.log").read_text()
    assert took < 20, f"took {took:.1f}s to stop"
    assert unpublished(db_path) == 0  # every committed event reached JetStream before exit
    assert await stream_count(nats_server.url) >= 2  # practice created + patients synced chunks
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{base}/healthz", timeout=1)


async def test_readiness_follows_nats(registry_process, nats_server):
    _proc, base, _db = registry_process
    async with httpx.AsyncClient(base_url=base, timeout=5) as client:
        assert (await client.get("/readyz")).status_code == 200
        nats_server.kill()
        for _ in range(100):
            r = await client.get("/readyz")
            if r.status_code == 503:
                break
            await asyncio.sleep(0.1)
        assert r.status_code == 503 and r.json()["checks"]["nats"] == "unavailable"
        assert (await client.get("/healthz")).status_code == 200
        # writes still succeed while NATS is away: their events wait in the outbox
        assert (await client.post("/api/v1/practices", json={"ods_code": "B82002", "name": "Another"},
                                  headers=ADMIN)).status_code == 201
        nats_server.start()
        for _ in range(150):
            r = await client.get("/readyz")
            if r.status_code == 200:
                break
            await asyncio.sleep(0.1)
        assert r.status_code == 200
