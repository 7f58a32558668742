"""What passes through the gateway and how: identity, request ids, headers, bodies both ways (streamed), SSE,
limits on size and page size, and the access log."""

from __future__ import annotations

import asyncio
import hashlib
import os

import httpx

from services.auth import IdentityVerifier, Principal, sign_identity
from tests.gateway.conftest import IDENTITY_SECRET, bearer
from tests.support.apps import wait_until

PATH = "/api/v1/practices/A81001"


def _headers(echoed: dict, name: str) -> list[str]:
    return [v for k, v in echoed["headers"] if k == name]


async def test_spoofed_identity_is_replaced_by_the_gateways_own(client: httpx.AsyncClient):
    # Even a correctly signed admin identity from a client is thrown away: only the gateway speaks for callers.
    spoofed = sign_identity(Principal("mallory", "admin"), IDENTITY_SECRET)
    response = await client.get(PATH, headers={**bearer("agent"), "X-Callcentre-Identity": spoofed,
                                               "X-Callcentre-Other": "1", "X-Forwarded-For": "10.9.8.7",
                                               "X-Real-IP": "10.9.8.7", "Forwarded": "for=10.9.8.7"})
    echoed = response.json()
    identities = _headers(echoed, "x-callcentre-identity")
    assert len(identities) == 1 and identities[0] != spoofed
    principal = IdentityVerifier(IDENTITY_SECRET).verify(identities[0])
    assert principal == Principal("agent1", "agent")
    assert not _headers(echoed, "x-callcentre-other")
    assert _headers(echoed, "x-forwarded-for") == ["127.0.0.1"] and not _headers(echoed, "x-real-ip")
    assert not _headers(echoed, "forwarded") and not _headers(echoed, "authorization")

    # Without credentials on a public route the spoofed header is still dropped, and nothing is added.
    public = (await client.get("/", headers={"X-Callcentre-Identity": spoofed})).json()
    assert public["identity"] is None and not _headers(public, "x-callcentre-identity")


async def test_request_id_is_kept_or_made_and_sent_both_ways(client: httpx.AsyncClient):
    response = await client.get(PATH, headers={**bearer("agent"), "X-Request-ID": "call-42.retry:1"})
    assert response.headers.get_list("x-request-id") == ["call-42.retry:1"]
    assert _headers(response.json(), "x-request-id") == ["call-42.retry:1"]

    for given in (None, "has spaces in it", "x" * 200):
        response = await client.get(PATH, headers={**bearer("agent"), **({"X-Request-ID": given} if given else {})})
        made = response.headers.get_list("x-request-id")
        assert len(made) == 1 and made[0] != given and len(made[0]) == 32
        assert _headers(response.json(), "x-request-id") == made
    refused = await client.get(PATH, headers={"X-Request-ID": "mine-1"})
    assert refused.status_code == 401 and refused.headers["x-request-id"] == "mine-1"
    assert refused.json()["request_id"] == "mine-1"


async def test_bodies_pass_through_unchanged(client: httpx.AsyncClient):
    malformed = b'{"slot_id": "s1", "nhs_number": '
    response = await client.post("/api/v1/appointments", content=malformed,
                                 headers={**bearer("agent"), "Content-Type": "application/json"})
    echoed = response.json()
    assert echoed["body"] == malformed.decode() and echoed["method"] == "POST"
    assert _headers(echoed, "content-type") == ["application/json"]

    big = os.urandom(5 * 1024 * 1024)
    echoed = (await client.put("/api/v1/rotas/A81001", content=big, headers=bearer("admin"))).json()
    assert echoed["body_length"] == len(big) and echoed["body_sha256"] == hashlib.sha256(big).hexdigest()

    async def chunked():
        for _ in range(30):
            yield b"x" * 100_000

    echoed = (await client.put("/api/v1/rotas/A81001", content=chunked(), headers=bearer("admin"))).json()
    assert echoed["body_length"] == 3_000_000

    # Status codes, response headers and repeated headers come back as the service sent them.
    response = await client.get(PATH + "?status=409&set_cookies=1", headers=bearer("agent"))
    assert response.status_code == 409 and response.headers["x-upstream"] == "registry"
    assert len(response.headers.get_list("set-cookie")) == 2
    assert len(response.headers.get_list("date")) == 1 and "server" not in response.headers
    head = await client.head(PATH, headers=bearer("agent"))
    assert head.status_code == 200 and head.content == b""

    # A large response is streamed back whole.
    response = await client.get("/api/v1/slots?chunks=2000", headers=bearer("agent"))
    assert response.status_code == 200 and len(response.content) == 2000 * 1200
    assert response.content.startswith(b"chunk-00000;") and response.content.endswith(b"chunk-01999;")


async def test_query_strings_pass_with_the_page_size_capped(client: httpx.AsyncClient):
    echoed = (await client.get("/api/v1/slots?practice=A81001&limit=100000&from=2026-01-01T08%3A00%2B00%3A00",
                               headers=bearer("agent"))).json()
    assert echoed["query"] == "practice=A81001&limit=500&from=2026-01-01T08%3A00%2B00%3A00"
    echoed = (await client.get("/api/v1/slots?limit=20", headers=bearer("agent"))).json()
    assert echoed["query"] == "limit=20"
    echoed = (await client.get("/api/v1/practices/A81001/clinicians%20x", headers=bearer("agent"))).json()
    assert echoed["raw_path"] == "/api/v1/practices/A81001/clinicians%20x"


async def test_body_limit_is_413(client: httpx.AsyncClient):
    too_big = b"x" * (10 * 1024 * 1024 + 1)
    response = await client.put("/api/v1/practices/A81001/patients", content=too_big, headers=bearer("admin"))
    assert response.status_code == 413 and response.json()["code"] == "payload_too_large"
    assert response.headers["content-type"] == "application/problem+json"

    async def chunked():
        for _ in range(11):
            yield b"y" * (1024 * 1024)

    response = await client.put("/api/v1/practices/A81001/patients", content=chunked(), headers=bearer("admin"))
    assert response.status_code == 413 and response.json()["code"] == "payload_too_large"
    # The gateway is fine afterwards.
    assert (await client.get(PATH, headers=bearer("admin"))).status_code == 200


async def test_server_sent_events_are_not_buffered(client: httpx.AsyncClient, upstreams):
    async with client.stream("GET", "/api/v1/stream", headers=bearer("agent")) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = response.aiter_lines()
        # The service sends the second event only when told to, after the first has arrived here: a gateway
        # that buffered would never deliver the first one.
        first = await asyncio.wait_for(_next_data(lines), timeout=5)
        assert first == "data: first"
        httpx.post(f"{upstreams['desk'].url}/_control/sse-next", json={})
        assert await asyncio.wait_for(_next_data(lines), timeout=5) == "data: second"


async def _next_data(lines) -> str:  # noqa: ANN001
    async for line in lines:
        if line.startswith("data:"):
            return line
    raise AssertionError("stream ended")


async def test_access_log_has_routes_not_queries(client: httpx.AsyncClient, gateway):
    await client.get("/api/v1/patients?nhs_number=9434765919&family=Smith", headers=bearer("agent"),
                     params={"marker": "access-log-probe"})
    await client.get("/api/v1/patients/9434765919", headers={**bearer("agent"), "X-Request-ID": "9434765919"})

    def logged() -> str | None:
        text = gateway.log()
        return text if '"route":"/api/v1/patients/**"' in text else None

    text = await wait_until(logged, timeout=5)
    assert "9434765919" not in text and "Smith" not in text and "access-log-probe" not in text
    assert '"request_id":"*******919"' in text  # a request id that looks like an NHS number is masked
    assert '"event":"http.request"' in text and '"upstream":"registry"' in text

    metrics = (await client.get("/metrics")).text
    assert 'route="/api/v1/patients/**"' in metrics and 'service="gateway"' in metrics
    assert 'gateway_upstream_requests_total{route="/api/v1/patients/**",status="200",upstream="registry"}' in metrics
    assert 'gateway_circuit_breaker_state{upstream="booking"}' in metrics
