"""Failure at the gateway: a dead upstream is a quick 503 (and trips its circuit breaker, which recovers by
itself), a slow one a 504, the registry being down a 503 for API-key callers; /readyz names every upstream;
rate limits answer 429; the merged OpenAPI document says which service is missing."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.gateway.conftest import (UPSTREAM_NAMES, Process, bearer, practice_key, start_gateway,
                                    start_upstream)
from tests.support.apps import wait_until
from tests.support.natsserver import free_port


@pytest.fixture(scope="module")
def stack(log_dir: Path) -> Iterator[tuple[dict[str, Process], Process]]:
    """Upstreams and a gateway of this module's own: its tests kill and restart them (in this order: slow,
    killed and restarted, killed for good)."""
    upstreams = {name: start_upstream(name, log_dir) for name in UPSTREAM_NAMES}
    gateway = start_gateway(upstreams, log_dir, openapi_retry_seconds="0.2")
    yield upstreams, gateway
    gateway.stop()
    for process in upstreams.values():
        process.stop()


async def test_an_answer_cut_off_mid_body_is_503_not_a_broken_response(stack):
    _upstreams, gateway = stack
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as client:
        response = await client.post("/api/v1/appointments?cut=1", headers=bearer("agent"), json={})
        assert response.status_code == 503 and response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "upstream_unavailable" and response.json()["upstream"] == "booking"
        assert int(response.headers["retry-after"]) >= 1
        assert (await client.get("/api/v1/slots", headers=bearer("agent"))).status_code == 200


async def test_slow_upstream_is_504(stack):
    upstreams, gateway = stack
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as client:
        response = await client.get("/api/v1/slots?sleep=3", headers=bearer("agent"))  # route timeout here: 1 s
        assert response.status_code == 504 and response.json()["code"] == "upstream_timeout"
        assert response.json()["upstream"] == "booking"
        assert (await client.get("/api/v1/slots?sleep=0.1", headers=bearer("agent"))).status_code == 200
        # Server-sent events have no read timeout: the stream stays open past the route timeout.
        async with client.stream("GET", "/api/v1/stream", headers=bearer("agent")) as stream:
            lines = stream.aiter_lines()
            assert await anext(lines) == "event: hello"
            await asyncio.sleep(1.5)
            httpx.post(f"{upstreams['desk'].url}/_control/sse-next", json={})
            rest = [line async for line in lines if line.startswith("data:")]
            assert rest == ["data: first", "data: second"]


async def test_dead_upstream_fails_fast_then_recovers(stack):
    upstreams, gateway = stack
    async with httpx.AsyncClient(base_url=gateway.url, timeout=5) as client:
        assert (await client.get("/api/v1/slots", headers=bearer("agent"))).status_code == 200
        spec = (await client.get("/api/v1/openapi.json")).json()
        assert "x-unavailable" not in spec and "/api/v1/slots" in spec["paths"]

        upstreams["booking"].stop(signal.SIGKILL)
        codes = []
        for _ in range(8):
            response = await client.get("/api/v1/slots", headers=bearer("agent"))
            codes.append(response.status_code)
            body = response.json()
            assert response.headers["content-type"] == "application/problem+json"
            assert body["code"] == "upstream_unavailable" and body["upstream"] == "booking"
            assert int(response.headers["retry-after"]) >= 1
        assert codes == [503] * 8
        # The other services are unaffected.
        assert (await client.get("/api/v1/practices/A81001", headers=bearer("agent"))).status_code == 200

        ready = (await client.get("/readyz")).json()
        assert ready["status"] == "degraded"
        assert set(ready["upstreams"]) == {"booking", "registry", "desk"}
        assert ready["upstreams"]["booking"]["status"] == "unavailable"
        assert ready["upstreams"]["booking"]["circuit"] == "open"  # threshold 3 in these tests
        assert ready["upstreams"]["registry"]["status"] == "ok"
        assert (await client.get("/readyz?strict=1")).status_code == 503
        metrics = (await client.get("/metrics")).text
        assert 'gateway_circuit_breaker_state{upstream="booking"} 2.0' in metrics
        assert 'gateway_upstream_errors_total{reason="circuit_open",upstream="booking"}' in metrics

        # Back on the same port: the breaker lets a probe through after its reset time and closes again.
        upstreams["booking"] = start_upstream("booking", gateway.log_path.parent, port=upstreams["booking"].port)

        async def served() -> bool:
            return (await client.get("/api/v1/slots", headers=bearer("agent"))).status_code == 200

        await wait_until(served, timeout=10, interval=0.2)
        ready = (await client.get("/readyz?strict=1"))
        assert ready.status_code == 200 and ready.json()["upstreams"]["booking"]["circuit"] == "closed"


async def test_registry_down_is_503_for_api_keys_and_readyz_reports_it(stack):
    upstreams, gateway = stack
    async with httpx.AsyncClient(base_url=gateway.url, timeout=5) as client:
        httpx.post(f"{upstreams['desk'].url}/_control/ready", json={"ready": False})
        ready = (await client.get("/readyz")).json()
        assert ready["upstreams"]["desk"] == {"circuit": "closed", "status": "not_ready", "http_status": 503}

        upstreams["registry"].stop(signal.SIGKILL)
        response = await client.get("/api/v1/slots", headers=practice_key())
        assert response.status_code == 503 and response.json()["upstream"] == "registry"
        assert (await client.get("/api/v1/slots", headers=bearer("agent"))).status_code == 200


async def test_openapi_from_what_is_available(log_dir: Path):
    upstreams = {name: start_upstream(name, log_dir) for name in ("booking", "registry")}
    desk_port = free_port()  # the desk is not running yet
    upstreams["desk"] = Process(["true"], port=desk_port, log_path=log_dir / "not-started.log")
    gateway = start_gateway(upstreams, log_dir, openapi_retry_seconds="0.2")
    try:
        async with httpx.AsyncClient(base_url=gateway.url, timeout=5) as client:
            spec = (await client.get("/api/v1/openapi.json")).json()
            assert spec["x-unavailable"] == ["desk"]
            assert "/api/v1/slots" in spec["paths"] and "/api/v1/practices" in spec["paths"]
            assert "/api/v1/calls" not in spec["paths"]

            upstreams["desk"] = start_upstream("desk", log_dir, port=desk_port)

            async def complete() -> dict | None:
                spec = (await client.get("/api/v1/openapi.json")).json()
                return spec if "x-unavailable" not in spec else None

            spec = await wait_until(complete, timeout=10, interval=0.2)
            assert "/api/v1/calls" in spec["paths"] and "/api/v1/slots" in spec["paths"]
    finally:
        gateway.stop()
        for process in upstreams.values():
            process.stop()


async def test_rate_limits_are_429_with_retry_after(upstreams, log_dir: Path):
    gateway = start_gateway(upstreams, log_dir, rate_limit_principal="5/minute", rate_limit_anonymous="3/minute")
    try:
        async with httpx.AsyncClient(base_url=gateway.url, timeout=5) as client:
            codes = [(await client.get("/api/v1/slots", headers=bearer("agent", "busy"))).status_code
                     for _ in range(7)]
            assert codes == [200] * 5 + [429] * 2
            limited = await client.get("/api/v1/slots", headers=bearer("agent", "busy"))
            assert limited.headers["content-type"] == "application/problem+json"
            assert limited.json()["code"] == "rate_limited" and 1 <= int(limited.headers["retry-after"]) <= 60
            # Limits are per principal: someone else is still served.
            assert (await client.get("/api/v1/slots", headers=bearer("agent", "calm"))).status_code == 200

            # Unauthenticated API calls (logging in) are limited per client address.
            codes = [(await client.post("/api/v1/auth/token", json={"username": "u", "password": "p"})).status_code
                     for _ in range(5)]
            assert codes == [200] * 3 + [429] * 2
            assert (await client.get("/")).status_code == 200  # the UI's pages are not
            # ...but the UI's sign-in form is, from the same per-address budget: no password guessing around it.
            assert (await client.post("/login", data={"username": "u", "password": "p"})).status_code == 429
    finally:
        gateway.stop()
