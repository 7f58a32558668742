"""One OpenAPI document for the whole public API, merged from the services' own."""

from __future__ import annotations

import httpx


def _resolve(spec: dict, ref: str) -> dict:
    node = spec
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


async def test_merged_spec(client: httpx.AsyncClient):
    response = await client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    spec = response.json()
    assert spec["openapi"].startswith("3.") and "x-unavailable" not in spec
    paths = spec["paths"]
    assert {"/api/v1/slots", "/api/v1/practices", "/api/v1/calls", "/api/v1/auth/token"} <= set(paths)
    assert not [p for p in paths if not p.startswith("/api/v1/")]  # no /healthz, /internal/..., /readyz
    # Every service's copy of /api/v1/rotas/{ods}: only the one from the service it is routed to stays.
    assert paths["/api/v1/rotas/{ods}"]["put"]["x-upstream"] == "booking"

    # Same schema name, different shapes: each path still points at its own service's schema.
    for path, service in (("/api/v1/slots", "booking"), ("/api/v1/practices", "registry"), ("/api/v1/calls", "desk")):
        operation = paths[path]["get"]
        schema = _resolve(spec, operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"])
        assert list(schema["properties"]) == [f"{service}_items"]
        assert operation["x-upstream"] == service
        assert [p["name"] for p in operation["parameters"]] == ["limit"]  # the identity header is not public
        assert operation["responses"]["401"]["content"]["application/problem+json"]
    assert spec["components"]["schemas"]["Shared"] == {"type": "string"}

    schemes = spec["components"]["securitySchemes"]
    assert schemes["bearerAuth"]["scheme"] == "bearer"
    assert schemes["cookieAuth"] == {**schemes["cookieAuth"], "in": "cookie", "name": "cc_session"}
    assert schemes["apiKeyAuth"] == {**schemes["apiKeyAuth"], "in": "header", "name": "X-API-Key"}
    assert {"bearerAuth": []} in spec["security"]
    assert paths["/api/v1/auth/token"]["post"]["security"] == []  # logging in needs no credentials
