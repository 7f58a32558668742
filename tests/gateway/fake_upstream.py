"""A small real HTTP server standing in for one service behind the gateway: it echoes what it received (path,
query, headers, the verified identity, the body), and can be slow, stream, serve server-sent events, report
not-ready, serve an OpenAPI spec, verify API keys (registry), check staff accounts (desk) and serve a JWKS
(desk, as an identity provider).

Run: python -m tests.gateway.fake_upstream NAME PORT IDENTITY_SECRET
Control endpoints live under /_control/ (the test calls them directly, never through the gateway)."""

from __future__ import annotations

import asyncio
import hashlib
import sys

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from services.auth import IDENTITY_HEADER, IdentityVerifier
from services.errors import DomainError
from services.httpserver import HTTP_PROTOCOL

API_KEYS = {"pk_A81001_secret": ("key-a", "A81001"), "pk_B82002_secret": ("key-b", "B82002")}


class CutOff(Response):
    """Headers promising 1,000 bytes, 10 of them, then the connection drops: a service killed while it answered."""

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001
        await send({"type": "http.response.start", "status": 201,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"1000")]})
        await send({"type": "http.response.body", "body": b'{"id": "ap', "more_body": True})
        raise ConnectionAbortedError("the service died mid-answer")


def build(name: str, secret: str) -> Starlette:
    verifier = IdentityVerifier(secret)
    state = {"ready": True, "revoked": set(), "verify_calls": 0, "jwks": {"keys": []}, "sse_next": asyncio.Event(),
             "verify_status": None, "staff": {}, "staff_calls": 0, "staff_status": None,
             "staff_answer": asyncio.Event()}
    state["staff_answer"].set()

    def identity_of(request: Request) -> dict | str | None:
        values = request.headers.getlist(IDENTITY_HEADER)
        if not values:
            return None
        if len(values) > 1:
            return "several"
        try:
            p = verifier.verify(values[0])
        except DomainError:
            return "invalid"
        return {"subject": p.subject, "role": p.role, "ods_code": p.ods_code}

    async def echo(request: Request) -> Response:
        if "sleep" in request.query_params:
            await asyncio.sleep(float(request.query_params["sleep"]))
        if "cut" in request.query_params:
            return CutOff()
        if "chunks" in request.query_params:
            count = int(request.query_params["chunks"])

            async def chunks():
                for i in range(count):
                    yield (f"chunk-{i:05d};" * 100).encode()

            return StreamingResponse(chunks(), media_type="application/octet-stream")
        body = await request.body()
        payload = {
            "service": name,
            "method": request.method,
            "path": request.url.path,
            "raw_path": request.scope["raw_path"].decode("latin-1"),
            "query": request.scope["query_string"].decode("latin-1"),
            "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in request.scope["headers"]],
            "identity": identity_of(request),
            "body_length": len(body),
            "body_sha256": hashlib.sha256(body).hexdigest(),
            "body": body.decode("utf-8", "replace") if len(body) < 4096 else None,
        }
        response = JSONResponse(payload, status_code=int(request.query_params.get("status", 200)),
                                headers={"x-upstream": name})
        if "set_cookies" in request.query_params:
            response.set_cookie("first", "1")
            response.set_cookie("second", "2")
        return response

    async def readyz(request: Request) -> Response:
        return JSONResponse({"status": "ready" if state["ready"] else "not_ready"},
                            status_code=200 if state["ready"] else 503)

    async def openapi(request: Request) -> Response:
        prefix = {"booking": "slots", "registry": "practices", "desk": "calls"}[name]
        return JSONResponse({
            "openapi": "3.1.0",
            "info": {"title": name, "version": "1"},
            "paths": {
                f"/api/v1/{prefix}": {"get": {"operationId": f"list_{prefix}", "parameters": [
                    {"name": "x-callcentre-identity", "in": "header", "schema": {"type": "string"}},
                    {"name": "limit", "in": "query", "schema": {"type": "integer"}}],
                    "responses": {"200": {"description": "ok", "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/Page"}}}}}}},
                **({"/api/v1/auth/token": {"post": {"operationId": "token", "responses": {"200": {
                    "description": "ok"}}}}} if name == "desk" else {}),
                "/healthz": {"get": {"responses": {"200": {"description": "ok"}}}},
                "/internal/v1/secret": {"post": {"responses": {"200": {"description": "ok"}}}},
                "/api/v1/rotas/{ods}": {"put": {"responses": {"200": {"description": "not mine to serve"}}}},
            },
            "components": {"schemas": {
                # Same name, different shape in every service: the merge must keep them apart.
                "Page": {"type": "object", "properties": {f"{name}_items": {"type": "array"}}},
                "Shared": {"type": "string"},
            }},
        })

    async def verify_key(request: Request) -> Response:
        state["verify_calls"] += 1
        caller = identity_of(request)
        if not isinstance(caller, dict) or caller["role"] != "service":
            return JSONResponse({"code": "forbidden"}, status_code=403)
        if state["verify_status"]:
            return JSONResponse({"code": "broken"}, status_code=state["verify_status"])
        key = (await request.json()).get("key")
        if key in API_KEYS and key not in state["revoked"]:
            key_id, ods = API_KEYS[key]
            return JSONResponse({"key_id": key_id, "ods_code": ods})
        return JSONResponse({"code": "invalid_api_key"}, status_code=401, media_type="application/problem+json")

    async def verify_staff(request: Request) -> Response:
        # The desk's account check: every account is active with the role asked about, unless a test said
        # otherwise through /_control/staff ({"username", "active"?, "role"?}).
        state["staff_calls"] += 1
        await state["staff_answer"].wait()  # /_control/staff-hold keeps the answer back
        caller = identity_of(request)
        if not isinstance(caller, dict) or caller["role"] != "service":
            return JSONResponse({"code": "forbidden_role"}, status_code=403)
        if state["staff_status"]:
            return JSONResponse({"code": "broken"}, status_code=state["staff_status"])
        asked = await request.json()
        account = {"active": True, "role": asked["role"], **state["staff"].get(asked["username"], {})}
        if not account["active"]:
            return JSONResponse({"code": "account_disabled"}, status_code=401)
        if account["role"] != asked["role"]:
            return JSONResponse({"code": "role_changed"}, status_code=401)
        return JSONResponse({"username": asked["username"], **account})

    async def sse(request: Request) -> Response:
        state["sse_next"] = asyncio.Event()
        event = state["sse_next"]

        async def events():
            yield b"event: hello\ndata: first\n\n"
            await event.wait()  # the test releases the second event only after it has seen the first
            yield b"event: hello\ndata: second\n\n"

        return StreamingResponse(events(), media_type="text/event-stream", headers={"cache-control": "no-cache"})

    async def control(request: Request) -> Response:
        action = request.path_params["action"]
        body = await request.json() if request.method == "POST" else {}
        if action == "ready":
            state["ready"] = bool(body["ready"])
        elif action == "revoke":
            state["revoked"].add(body["key"])
        elif action == "unrevoke":
            state["revoked"].discard(body["key"])
        elif action == "verify-status":
            state["verify_status"] = body.get("status")
        elif action == "jwks":
            state["jwks"] = body
        elif action == "sse-next":
            state["sse_next"].set()
        elif action == "staff":
            account = {k: body[k] for k in ("active", "role") if k in body}
            if account:
                state["staff"][body["username"]] = account
            else:
                state["staff"].pop(body["username"], None)
        elif action == "staff-status":
            state["staff_status"] = body.get("status")
        elif action == "staff-hold":
            (state["staff_answer"].clear if body.get("hold") else state["staff_answer"].set)()
        return JSONResponse({"verify_calls": state["verify_calls"], "staff_calls": state["staff_calls"]})

    async def jwks(request: Request) -> Response:
        return JSONResponse(state["jwks"])

    async def discovery(request: Request) -> Response:
        base = f"http://{request.headers['host']}/idp"
        return JSONResponse({"issuer": base, "jwks_uri": f"{base}/jwks.json"})

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
    return Starlette(routes=[
        Route("/readyz", readyz),
        Route("/api/v1/openapi.json", openapi),
        Route("/internal/v1/api-keys/verify", verify_key, methods=["POST"]),
        Route("/internal/v1/staff/verify", verify_staff, methods=["POST"]),
        Route("/api/v1/stream", sse),
        Route("/_control/{action}", control, methods=["GET", "POST"]),
        Route("/idp/jwks.json", jwks),
        Route("/idp/.well-known/openid-configuration", discovery),
        Route("/{path:path}", echo, methods=methods),
    ])


if __name__ == "__main__":
    upstream_name, port, identity_secret = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    uvicorn.run(build(upstream_name, identity_secret), host="127.0.0.1", port=port, log_level="warning",
                loop="uvloop", http=HTTP_PROTOCOL, access_log=False)  # as the services run
