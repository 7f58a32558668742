"""The live stream (server-sent events) over real HTTP: pushes from NATS reach connected clients, idle
connections get keep-alive comments, and streams end cleanly when the server shuts down."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import fastapi.routing
import httpx
import pytest
import uvicorn

from services.contracts.booking import (AppointmentBooked, AppointmentCancelled, AppointmentRescheduled,
                                        SlotAvailabilityChanged)
from services.timeutil import LONDON, utcnow
from tests.agent_desk_svc.test_dashboard import appointment
from tests.agent_desk_svc.conftest import Desk, desk_settings, staff, started_desk
from tests.support.apps import wait_until
from tests.support.natsserver import free_port

SUE = staff("sue", "supervisor")


class EventStream:
    """Reads `text/event-stream` into (event, data) pairs; comment lines are kept as ("comment", text)."""

    def __init__(self, response: httpx.Response) -> None:
        self.lines = response.aiter_lines()

    async def next(self, timeout: float = 10) -> tuple[str, Any]:
        return await asyncio.wait_for(self._next(), timeout)

    async def _next(self) -> tuple[str, Any]:
        event, data = "message", []
        async for line in self.lines:
            if line.startswith(":"):
                return "comment", line[1:].strip()
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
            elif line == "" and data:
                return event, json.loads("\n".join(data))
        raise EOFError

    async def until(self, wanted: str, predicate=lambda _data: True, timeout: float = 10) -> Any:  # noqa: ANN001
        async def find() -> Any:
            while True:
                event, data = await self._next()
                if event == wanted and predicate(data):
                    return data

        return await asyncio.wait_for(find(), timeout)


@asynccontextmanager
async def served(desk: Desk) -> AsyncIterator[str]:
    """Serve the already-started app over real HTTP (httpx's in-process transport buffers whole bodies)."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(desk.app, host="127.0.0.1", port=port, lifespan="off", log_config=None,
                                           access_log=False))
    task = asyncio.create_task(server.serve())
    await wait_until(lambda: server.started)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 20)


async def test_stream_pushes_slot_taken_and_dashboard_changes(desk: Desk, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fastapi.routing, "_PING_INTERVAL", 0.3)  # the 15 s keep-alive, shortened for the test
    await desk.create_agent("alice")
    assert (await desk.client.get("/api/v1/stream")).status_code == 401
    async with served(desk) as url, httpx.AsyncClient(base_url=url, timeout=20) as client:
        async with client.stream("GET", "/api/v1/stream", headers=SUE) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            events = EventStream(response)
            # The figures come at once; under load a 0.3 s keep-alive comment may arrive first.
            first = await events.until("dashboard")
            assert first["agents_by_state"]["offline"] == 2
            assert await events.until("comment") == "ping"
            await wait_until(lambda: desk.app.state.live.client_count == 1)

            today = utcnow().astimezone(LONDON).date().isoformat()
            await desk.publish(SlotAvailabilityChanged(ods_code="A81001", free_slots_by_date={today: 7},
                                                       taken_slot_ids=["slot-1", "slot-2"]), subject_key="A81001")
            taken = await events.until("slot_taken")
            assert taken == {"ods_code": "A81001", "slot_ids": ["slot-1", "slot-2"]}
            # Appointment changes carry their slots themselves.
            await desk.publish(appointment(AppointmentBooked, "b7", "A81001", status="booked", booking_reference="R"),
                               subject_key="A81001")
            assert await events.until("slot_taken") == {"ods_code": "A81001", "slot_ids": ["slot-b7"]}
            await desk.publish(appointment(AppointmentCancelled, "b7", "A81001", status="cancelled"),
                               subject_key="A81001")
            assert await events.until("slot_freed") == {"ods_code": "A81001", "slot_ids": ["slot-b7"]}
            moves = [("m1", "A81001", "slot-old-1"), ("m2", "B82002", "slot-old-2"), ("m3", "A81001", "slot-old-3")]
            for appointment_id, previous_ods, previous_slot in moves:
                await desk.publish(appointment(AppointmentRescheduled, appointment_id, "A81001", status="booked",
                                               previous_appointment_id="p", previous_slot_id=previous_slot,
                                               previous_slot_start=utcnow(), previous_ods_code=previous_ods),
                                   subject_key="A81001")
            pushed = []
            while len(pushed) < 5:
                event, data = await events.next()
                if event in ("slot_taken", "slot_freed"):
                    assert data["ods_code"] == "A81001"
                    pushed.append((event, data["slot_ids"]))
            # A move from another practice frees its slot there (that practice's own availability event).
            assert pushed == [("slot_taken", ["slot-m1"]), ("slot_freed", ["slot-old-1"]), ("slot_taken", ["slot-m2"]),
                              ("slot_taken", ["slot-m3"]), ("slot_freed", ["slot-old-3"])]
            # The projection changes too, and the new figures are pushed.
            figures = await events.until("dashboard", lambda d: d["free_slots_today_by_practice"] == {"A81001": 7})
            assert figures["agents_by_state"]["offline"] == 2
            # A change made through the API reaches the stream as well.
            await desk.client.put("/api/v1/agents/alice/state", headers=staff("alice"), json={"state": "available"})
            await events.until("dashboard", lambda d: d["agents_by_state"]["available"] == 1)

            # Shutting down ends the stream cleanly (a complete response, not a cut connection).
            desk.app.state.live.end_streams()
            with pytest.raises(EOFError):
                await events.next()
        assert desk.app.state.live.client_count == 0
        late = await client.get("/api/v1/stream", headers=SUE)
        assert late.status_code == 503 and late.json()["code"] == "shutting_down"


async def test_a_slow_client_is_dropped_not_buffered(desk: Desk) -> None:
    hub = desk.app.state.live
    async with hub.connect() as slow, hub.connect() as keeping_up:
        for n in range(desk.settings.live_client_queue_size + 1):
            hub.broadcast("slot_taken", {"slot_ids": [str(n)]})
            if n < desk.settings.live_client_queue_size:
                await keeping_up.get()
        assert slow.get_nowait() is None  # its stream ends; the browser reconnects
        assert hub.client_count == 1
        assert await keeping_up.get() == ("slot_taken", {"slot_ids": [str(desk.settings.live_client_queue_size)]})


@pytest.mark.parametrize("dialect", ["sqlite"], indirect=True)
async def test_sigterm_ends_open_streams_and_the_server_stops(database_url: str, nats_url: str,
                                                              tmp_path: Path) -> None:
    """A real `python -m agent_desk_svc serve`: uvicorn waits for open responses before shutting down, so the
    service must end its streams when told to stop."""
    port = free_port()
    env = {**os.environ, "DESK_DATABASE_URL": database_url, "DESK_NATS_URL": nats_url, "DESK_PORT": str(port),
           "DESK_LOG_LEVEL": "INFO"}
    subprocess.run([sys.executable, "-m", "agent_desk_svc", "migrate"], env=env, check=True, timeout=60)
    log = open(tmp_path / "desk.log", "wb")
    process = subprocess.Popen([sys.executable, "-m", "agent_desk_svc", "serve"], env=env, stdout=log,
                               stderr=subprocess.STDOUT)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=20) as client:
            async def ready() -> bool:
                try:
                    return (await client.get("/readyz")).status_code == 200
                except httpx.TransportError:
                    return False

            await wait_until(ready, timeout=30)
            async with client.stream("GET", "/api/v1/stream", headers=SUE) as response:
                events = EventStream(response)
                assert (await events.next())[0] == "dashboard"
                process.send_signal(signal.SIGTERM)
                with pytest.raises(EOFError):  # httpx would raise RemoteProtocolError on a cut connection
                    while True:
                        await events.next(timeout=20)
        # uvicorn re-raises the signal once it has shut down gracefully, so the exit status is "terminated".
        assert await asyncio.to_thread(process.wait, 20) == -signal.SIGTERM
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        log.close()
    output = (tmp_path / "desk.log").read_text()
    assert "service.stopped" in output  # the app's own shutdown ran to the end
    assert "timeout graceful shutdown exceeded" not in output  # nothing had to be cancelled


async def test_open_streams_do_not_hold_turns_at_the_request_pool(database_url: str, nats_url: str) -> None:
    """A stream's request gives its turn at the database pool back once the stream has started (the figures come
    from the hub's own sessions), so open dashboards cannot shut out ordinary requests: with a pool of two, three
    open streams and a request beside them."""
    async with started_desk(desk_settings(database_url, nats_url, database_pool_size=2)) as desk:
        async with served(desk) as url, httpx.AsyncClient(base_url=url, timeout=20) as client:
            async with contextlib.AsyncExitStack() as stack:
                streams = []  # kept: a reader left to the garbage collector closes its response
                for _ in range(3):
                    response = await stack.enter_async_context(client.stream("GET", "/api/v1/stream", headers=SUE))
                    assert response.status_code == 200
                    streams.append(EventStream(response))
                    assert (await streams[-1].until("dashboard"))["agents_by_state"] is not None
                await wait_until(lambda: desk.app.state.live.client_count == 3)
                beside = await asyncio.wait_for(client.get("/api/v1/dashboard", headers=SUE), 10)
                assert beside.status_code == 200
                desk.app.state.live.end_streams()
