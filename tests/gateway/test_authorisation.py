"""The authorisation table, enforced by the real gateway process: every route x every role (x own/other practice
where the gateway checks it), then the policy the brief states, written out independently of the table."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from gateway.routes import ROLES, ROUTES, Route, Timeout, match_route, split_api_path
from tests.gateway.conftest import bearer, practice_key

OWN, OTHER = "A81001", "B82002"  # the fake registry's key OWN_KEY belongs to A81001
METHOD_ORDER = ("GET", "POST", "PUT", "PATCH", "DELETE")


def _concrete(route: Route, ods: str, tail: tuple[str, ...]) -> str:
    parts = []
    for part in route.segments:
        if part == "**":
            parts.extend(tail)
        elif part.startswith("{"):
            parts.append(ods if part in ("{ods}",) else f"{part[1:-1]}-1")
        else:
            parts.append(part)
    return "/" + "/".join(parts)


def reachable_examples(route: Route) -> list[tuple[str, tuple[str, ...]]]:
    """(method, tail) pairs for which a request lands on this route (earlier routes do not shadow it)."""
    found = []
    for method in (m for m in METHOD_ORDER if m in route.methods):
        for tail in ((), ("sub-1",), ("sub-1", "sub-2")):
            path = _concrete(route, OWN, tail)
            matched = match_route(method, split_api_path(path))
            if matched is not None and matched[0] is route:
                found.append((method, tail))
                break
    return found


def test_every_route_in_the_table_is_reachable():
    for route in ROUTES:
        assert reachable_examples(route), f"{route.pattern} {sorted(route.methods)} is shadowed by earlier routes"


def _cases():
    for route in ROUTES:
        for method, tail in reachable_examples(route):
            for role in ROLES:
                places = ("own", "other") if role == "practice" and (route.own or route.own_query) else ("own",)
                for place in places:
                    yield route, method, tail, role, place


def _credentials(role: str) -> dict[str, str]:
    return practice_key() if role == "practice" else bearer(role)


async def _check(client: httpx.AsyncClient, route: Route, method: str, tail: tuple[str, ...], role: str,
                 place: str) -> None:
    ods = OWN if place == "own" else OTHER
    path = _concrete(route, ods, tail)
    params = {route.own_query: ods} if route.own_query else None
    body = {"probe": True} if method in ("POST", "PUT", "PATCH") else None
    allowed = route.public or (role in route.roles and place == "own")
    async with client.stream(method, path, params=params, json=body, headers=_credentials(role)) as response:
        if route.timeout is Timeout.STREAM and response.status_code == 200:
            assert allowed
            assert response.headers["content-type"].startswith("text/event-stream")
            return  # leaving the block disconnects; the gateway then drops the upstream stream
        await response.aread()
    if not allowed:
        assert response.status_code == 403, response.text
        problem = response.json()
        assert response.headers["content-type"] == "application/problem+json"
        assert problem["code"] == ("forbidden_role" if role not in route.roles else "other_practice")
        return
    assert response.status_code == 200, response.text
    echoed = response.json()
    assert echoed["service"] == route.upstream and echoed["method"] == method and echoed["path"] == path
    if route.public and role == "practice":
        assert echoed["identity"] is None  # public routes take a staff session if there is one, never a key
    else:
        assert echoed["identity"]["role"] == role
        if role == "practice":
            assert echoed["identity"]["ods_code"] == OWN


async def test_every_route_by_every_role(client: httpx.AsyncClient):
    cases = list(_cases())
    assert len(cases) > 200
    gate = asyncio.Semaphore(8)
    failures: list[str] = []

    async def one(case) -> None:  # noqa: ANN001
        route, method, tail, role, place = case
        async with gate:
            try:
                await _check(client, *case)
            except AssertionError as exc:
                failures.append(f"{method} {route.pattern} {tail} as {role} ({place}): {exc}")

    await asyncio.gather(*(one(case) for case in cases))
    assert not failures, "\n".join(failures)


# What the brief says, written out by hand: (method, path, role, allowed). "practice" uses A81001's key.
POLICY = [
    ("GET", "/api/v1/patients?nhs_number=9434765919", "practice", False),
    ("GET", "/api/v1/patients?nhs_number=9434765919", "agent", True),
    ("POST", "/api/v1/practices", "agent", False),
    ("POST", "/api/v1/practices", "supervisor", False),
    ("POST", "/api/v1/practices", "practice", False),
    ("POST", "/api/v1/practices", "admin", True),
    ("GET", "/api/v1/practices/A81001", "practice", True),
    ("GET", "/api/v1/practices/B82002", "practice", False),
    ("PATCH", "/api/v1/practices/A81001", "practice", True),
    ("PATCH", "/api/v1/practices/B82002", "practice", False),
    ("PATCH", "/api/v1/practices/A81001", "agent", False),
    ("PUT", "/api/v1/practices/A81001/clinicians", "practice", True),
    ("PUT", "/api/v1/practices/A81001/clinicians", "agent", False),
    ("PUT", "/api/v1/practices/A81001/slot-types", "practice", True),
    ("PUT", "/api/v1/practices/B82002/slot-types", "practice", False),
    ("PUT", "/api/v1/practices/A81001/slot-types", "supervisor", False),
    ("PUT", "/api/v1/practices/A81001/patients", "practice", True),
    ("PUT", "/api/v1/practices/A81001/patients", "agent", False),
    ("PUT", "/api/v1/practices/A81001/patients", "admin", True),
    ("POST", "/api/v1/pcns", "agent", False),
    ("POST", "/api/v1/pcns", "admin", True),
    ("GET", "/api/v1/pcns", "agent", True),
    ("POST", "/api/v1/practices/A81001/api-keys", "practice", False),
    ("POST", "/api/v1/practices/A81001/api-keys", "agent", False),
    ("POST", "/api/v1/practices/A81001/api-keys", "admin", True),
    ("DELETE", "/api/v1/practices/A81001/api-keys/key-1", "agent", False),
    ("POST", "/api/v1/agents", "agent", False),
    ("POST", "/api/v1/agents", "practice", False),
    ("POST", "/api/v1/agents", "supervisor", True),
    ("POST", "/api/v1/agents", "admin", True),
    ("PUT", "/api/v1/agents/agent1/state", "agent", True),
    ("GET", "/api/v1/audit", "agent", False),
    ("GET", "/api/v1/audit", "practice", False),
    ("GET", "/api/v1/audit", "supervisor", True),
    ("GET", "/api/v1/dashboard", "practice", False),
    ("GET", "/api/v1/dashboard", "agent", True),
    ("GET", "/api/v1/stream", "practice", False),
    ("POST", "/api/v1/calls", "practice", False),
    ("POST", "/api/v1/calls", "agent", True),
    ("GET", "/api/v1/agents/me", "practice", False),
    ("PUT", "/api/v1/rotas/A81001", "practice", True),
    ("PUT", "/api/v1/rotas/B82002", "practice", False),
    ("PUT", "/api/v1/rotas/A81001", "agent", False),
    ("PUT", "/api/v1/rotas/A81001", "admin", True),
    ("GET", "/api/v1/slots?practice=A81001", "practice", True),
    ("GET", "/api/v1/slots?practice=A81001&practice=B82002", "practice", False),
    ("GET", "/api/v1/slots?practice=B82002", "agent", True),
    ("POST", "/api/v1/holds", "practice", True),
    ("POST", "/api/v1/holds", "agent", True),
    ("POST", "/api/v1/appointments", "practice", True),
    ("POST", "/api/v1/appointments", "agent", True),
    ("POST", "/api/v1/appointments/apt-1/cancel", "agent", True),
    ("POST", "/api/v1/appointments/apt-1/status", "practice", True),
    ("POST", "/api/v1/appointments/apt-1/status", "agent", False),
    ("GET", "/api/v1/feed/A81001", "practice", True),
    ("GET", "/api/v1/feed/B82002", "practice", False),
    ("GET", "/api/v1/feed/A81001", "agent", False),
    ("POST", "/api/v1/callbacks", "practice", True),
    ("GET", "/api/v1/callbacks", "practice", False),
    ("PATCH", "/api/v1/callbacks/cb-1", "agent", True),
]


async def test_policy_from_the_brief(client: httpx.AsyncClient):
    failures = []
    for method, path, role, allowed in POLICY:
        response = await client.request(method, path, headers=_credentials(role),
                                         json={} if method in ("POST", "PUT", "PATCH") else None)
        if response.status_code != (200 if allowed else 403) or (
                not allowed and response.json()["code"] not in ("forbidden_role", "other_practice")):
            failures.append(f"{method} {path} as {role}: {response.status_code} {response.text[:200]}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("path", ["/internal/v1/api-keys/verify", "/api/v1/nothing-here", "/api/v2/practices",
                                  "/api", "/api/v1", "/api/v1/practices/%2e%2e/%2e%2e/internal/v1/api-keys/verify"])
async def test_unrouted_paths_are_404(client: httpx.AsyncClient, path: str):
    for method in ("GET", "POST"):
        response = await client.request(method, path, headers=bearer("admin"), json={"key": "pk_A81001_secret"})
        assert response.status_code == 404, (method, path, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    # Raw dot segments (httpx would normalise them away, so send them by hand).
    host, port = client.base_url.host, client.base_url.port
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(b"GET /api/v1/practices/../../../internal/v1/api-keys/verify HTTP/1.1\r\nHost: x\r\n"
                 b"Connection: close\r\n\r\n")
    await writer.drain()
    raw = await reader.read()
    writer.close()
    assert raw.startswith(b"HTTP/1.1 404"), raw[:200]


async def test_ui_and_assets_are_public_and_served_by_the_desk(client: httpx.AsyncClient):
    for path in ("/", "/static/app.js", "/login"):
        response = await client.get(path)
        assert response.status_code == 200
        assert response.json()["service"] == "desk" and response.json()["path"] == path
