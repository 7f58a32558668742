"""The gateway: a plain ASGI app (no framework on the hot path) that authenticates, authorises, limits and
forwards each request to its service, streaming bodies both ways.

Per request: request id -> own endpoints -> route (404 for anything not routed, /internal included) -> body size
by Content-Length -> credentials (401/503) -> CSRF for cookie sessions (403) -> role and practice (403) -> rate
limit (429) -> page-size cap -> forward with the signed identity (503 upstream down or circuit open, 504 slow)."""

from __future__ import annotations

import asyncio
import hmac
import re
import time
from typing import Any

import aiohttp
import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import Message, Receive, Scope, Send
from yarl import URL

from gateway.authentication import ApiKeys, IdentityTokens, StaffAccounts, StaffTokens
from gateway.metrics import REJECTED, UPSTREAM_ERRORS, UPSTREAM_LATENCY, UPSTREAM_REQUESTS
from gateway.openapi import SPEC_PATH, MergedOpenApi
from gateway.problems import (BadGateway, PayloadTooLarge, UpstreamTimeout, UpstreamUnavailable, send_problem)
from gateway.ratelimit import RateLimits
from gateway.routes import (UI_UPSTREAM, Route, Timeout, match_route, practices_in_query, split_api_path)
from gateway.settings import Settings
from gateway.upstreams import Upstream, build_upstreams
from services.accesslog import AccessLog
from services.auth import IDENTITY_HEADER, Principal
from services.errors import DomainError, Forbidden, NotFound, Unauthorized
from services.gc_tuning import freeze_startup_objects
from services.ids import new_id
from services.logging import configure_logging, get_logger, request_id_var
from services.metrics import HTTP_LATENCY, HTTP_REQUESTS

log = get_logger(__name__)

_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Never passed upstream from the client: hop-by-hop headers, credentials (the gateway consumed them), the
# identity header and anything else internal, and forwarding headers the gateway sets itself.
_DROP_REQUEST_HEADERS = frozenset({
    b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer", b"transfer-encoding", b"upgrade",
    b"proxy-authorization", b"host", b"expect", b"authorization", b"x-api-key", b"x-request-id",
    b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"x-forwarded-port", b"x-real-ip", b"forwarded",
})
_INTERNAL_HEADER_PREFIX = b"x-callcentre-"
_DROP_RESPONSE_HEADERS = frozenset({
    b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer", b"transfer-encoding", b"upgrade",
    b"proxy-authenticate", b"x-request-id", b"server",
})
_READ_WHOLE_BODY_UP_TO = 256 * 1024
_OWN_PATHS = frozenset({"/healthz", "/readyz", "/metrics", SPEC_PATH})


class _BodyState:
    __slots__ = ("too_large", "client_gone")

    def __init__(self) -> None:
        self.too_large = False
        self.client_gone = False


class Gateway:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.upstreams: dict[str, Upstream] = build_upstreams(settings)
        self.identity = IdentityTokens(settings)
        self.staff_tokens = StaffTokens(settings, StaffAccounts(settings, self.upstreams["desk"], self.identity))
        self.api_keys = ApiKeys(settings, self.upstreams["registry"], self.identity)
        self.rate_limits = RateLimits(settings)
        self.openapi = MergedOpenApi(self.upstreams, settings.openapi_cache_seconds,
                                     settings.openapi_retry_seconds)
        self.access_log = AccessLog(settings.access_log, settings.log_level, settings.service_name, "gateway.access")
        self._flusher: asyncio.Task[None] | None = None
        self.max_body = settings.max_body_bytes
        self.max_page = settings.max_page_size
        self._limit_cap = f"limit={settings.max_page_size}".encode()
        self._bulk_timeout = aiohttp.ClientTimeout(total=None, connect=settings.pool_timeout_seconds,
                                                   sock_connect=settings.connect_timeout_seconds,
                                                   sock_read=settings.bulk_timeout_seconds)
        self._request_metrics: dict[tuple[str, str, int], Any] = {}
        self._latency_metrics: dict[str, Any] = {}
        self._upstream_metrics: dict[tuple[str, str, int], Any] = {}
        self._upstream_latency = {name: UPSTREAM_LATENCY.labels(name) for name in self.upstreams}

    # ------------------------------------------------------------------------------------------ ASGI entry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self.handle(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        else:  # websockets are not part of the API
            await send({"type": "websocket.close", "code": 1003})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    configure_logging(self.settings.service_name, self.settings.log_level, self.settings.log_json)
                    for upstream in self.upstreams.values():
                        await upstream.start()
                except Exception as exc:  # noqa: BLE001
                    await send({"type": "lifespan.startup.failed", "message": repr(exc)})
                    return
                log.info("gateway.started", upstreams=self.settings.upstream_urls())
                self._flusher = asyncio.ensure_future(AccessLog.flush_every())
                freeze_startup_objects()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._flusher is not None:
                    self._flusher.cancel()
                AccessLog.flush()
                for upstream in self.upstreams.values():
                    await upstream.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    # ------------------------------------------------------------------------------------------ one request

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        method: str = scope["method"]
        path: str = scope["path"]
        request_id = None
        authorization = api_key = cookie_header = csrf_header = content_length = forwarded_for = host = None
        chunked = False
        forward: list[tuple[bytes, bytes]] = []
        for name, value in scope["headers"]:
            if name in _DROP_REQUEST_HEADERS or name.startswith(_INTERNAL_HEADER_PREFIX):
                if name == b"authorization":
                    authorization = value
                elif name == b"x-api-key":
                    api_key = value
                elif name == b"x-request-id":
                    request_id = value.decode("latin-1")
                elif name == b"x-forwarded-for":
                    forwarded_for = value
                elif name == b"host":
                    host = value
                elif name == b"transfer-encoding":
                    chunked = True
                continue
            if name == b"cookie":
                cookie_header = value if cookie_header is None else cookie_header + b"; " + value
                continue
            if name == b"content-length":
                content_length = value
            elif name == b"x-csrf-token":
                csrf_header = value
            forward.append((name, value))
        if request_id is None or not _REQUEST_ID_RE.match(request_id):
            request_id = new_id()
        rid_token = request_id_var.set(request_id)
        rid_header = (b"x-request-id", request_id.encode())
        status = 500
        route_label = "unmatched"
        upstream_name: str | None = None
        principal: Principal | None = None
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), rid_header]
                response_started = True
            await send(message)

        try:
            if path in _OWN_PATHS:
                route_label = path
                status = await self._own_endpoint(path, scope, send_with_id)
                return
            route: Route | None = None
            if path.startswith("/api/") or path == "/api":
                segments = split_api_path(path)
                if segments is None:
                    raise NotFound("There is no such endpoint.")
                matched = match_route(method, segments)
                if matched is None:
                    raise DomainError(f"{method} is not allowed here.", status=405, code="method_not_allowed",
                                      title="Method not allowed")
                route, bound = matched
                route_label = route.pattern
                upstream_name = route.upstream
            else:
                if path.startswith("/internal") or not _plain_path(path):
                    raise NotFound("There is no such endpoint.")
                route_label = "ui"
                upstream_name = UI_UPSTREAM
                bound = {}

            if content_length is not None and (not content_length.isdigit() or int(content_length) > self.max_body):
                raise PayloadTooLarge(f"Request bodies are limited to {self.max_body} bytes.")

            client_ip = self._client_ip(scope, forwarded_for)
            cookie_session = False
            if route is None or route.public:
                # Public: credentials are optional (the UI and the token endpoint); good ones are passed on.
                principal = await self._optional_staff(authorization, cookie_header)
                if route is not None or method in _UNSAFE_METHODS:  # the token endpoint and the UI's sign-in form
                    await self.rate_limits.check_ip(client_ip)
            else:
                principal, cookie_session = await self._authenticate(authorization, api_key, cookie_header)
                if cookie_session and method in _UNSAFE_METHODS:
                    self._check_csrf(cookie_header, csrf_header)
                self._authorise(route, bound, principal, scope["query_string"])
                await self.rate_limits.check_principal(f"{principal.role}:{principal.subject}")

            upstream = self.upstreams[upstream_name]
            if principal is not None:
                forward.append((IDENTITY_HEADER.encode(), self.identity.token_for(principal)))
            if cookie_header is not None and upstream_name == UI_UPSTREAM:
                forward.append((b"cookie", cookie_header))  # the UI's own session; other services never see it
            forward.append(rid_header)
            peer = scope["client"][0] if scope.get("client") else client_ip
            if self.settings.trust_forwarded_for and forwarded_for:
                forward.append((b"x-forwarded-for", forwarded_for + b", " + peer.encode()))
            else:
                forward.append((b"x-forwarded-for", peer.encode()))
            forward.append((b"x-forwarded-proto", scope.get("scheme", "http").encode()))
            if host is not None:
                forward.append((b"x-forwarded-host", host))
            status = await self._forward(scope, receive, send_with_id, upstream, route, route_label, forward,
                                         content_length, chunked)
        except DomainError as error:
            if error.status in (401, 403, 413, 429):
                REJECTED.labels(error.code).inc()
            status = error.status
            if not response_started:
                await send_problem(send_with_id, error, path=path, request_id=request_id)
        except Exception:
            if response_started:
                raise  # the server closes the connection: the client sees the response was cut short
            log.exception("gateway.unhandled_error", route=route_label)
            status = await send_problem(send_with_id, DomainError("Something went wrong; it has been logged.",
                                                                  status=500, code="internal_error",
                                                                  title="Internal error"),
                                        path=path, request_id=request_id)
        finally:
            elapsed = time.perf_counter() - started
            self._observe(method, route_label, status, elapsed)
            if self.access_log.enabled and route_label not in _OWN_PATHS:
                self.access_log.write(request_id=request_id, method=method, route=route_label, status=status,
                                      ms=round(elapsed * 1000, 2), upstream=upstream_name,
                                      role=principal.role if principal else None)
            request_id_var.reset(rid_token)

    # ------------------------------------------------------------------------------------------ who

    async def _authenticate(self, authorization: bytes | None, api_key: bytes | None,
                            cookie_header: bytes | None) -> tuple[Principal, bool]:
        if authorization is not None:
            scheme, _, token = authorization.decode("latin-1").partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthorized("Use 'Authorization: Bearer <token>'.", code="invalid_token")
            return await self.staff_tokens.verify(token.strip()), False
        if api_key is not None:
            return await self.api_keys.verify(api_key.decode("latin-1").strip()), False
        session = _cookie(cookie_header, "cc_session")
        if session:
            return await self.staff_tokens.verify(session), True
        raise Unauthorized("No credentials were presented.", code="unauthenticated",
                           headers={"WWW-Authenticate": 'Bearer realm="callcentre"'})

    async def _optional_staff(self, authorization: bytes | None, cookie_header: bytes | None) -> Principal | None:
        token = None
        if authorization is not None:
            scheme, _, value = authorization.decode("latin-1").partition(" ")
            token = value.strip() if scheme.lower() == "bearer" else None
        elif cookie_header is not None:
            token = _cookie(cookie_header, "cc_session")
        if not token:
            return None
        try:
            return await self.staff_tokens.verify(token)
        except DomainError:
            return None

    @staticmethod
    def _check_csrf(cookie_header: bytes | None, csrf_header: bytes | None) -> None:
        # Double submit: a cross-site page can make the browser send the cookies but cannot read cc_csrf
        # to copy it into the header.
        expected = _cookie(cookie_header, "cc_csrf")
        given = csrf_header.decode("latin-1") if csrf_header is not None else ""
        if not expected or not given or not hmac.compare_digest(expected.encode(), given.encode()):
            raise Forbidden("A cookie-authenticated change needs header X-CSRF-Token equal to the cc_csrf cookie.",
                            code="csrf_failed")

    @staticmethod
    def _authorise(route: Route, bound: dict[str, str], principal: Principal, query_string: bytes) -> None:
        if principal.role not in route.roles:
            raise Forbidden(f"The {principal.role} role may not use this endpoint.", code="forbidden_role")
        if principal.role != "practice":
            return
        if route.own is not None and bound[route.own].upper() != principal.ods_code:
            raise Forbidden("This API key belongs to another practice.", code="other_practice")
        if route.own_query is not None:
            for ods in practices_in_query(query_string, route.own_query):
                if ods.upper() != principal.ods_code:
                    raise Forbidden("This API key belongs to another practice.", code="other_practice")

    def _client_ip(self, scope: Scope, forwarded_for: bytes | None) -> str:
        if self.settings.trust_forwarded_for and forwarded_for:
            return forwarded_for.decode("latin-1").rsplit(",", 1)[-1].strip()
        client = scope.get("client")
        return client[0] if client else "unknown"

    # ------------------------------------------------------------------------------------------ forwarding

    async def _forward(self, scope: Scope, receive: Receive, send: Send, upstream: Upstream, route: Route | None,
                       route_label: str, headers: list[tuple[bytes, bytes]], content_length: bytes | None,
                       chunked: bool) -> int:
        breaker = upstream.breaker
        if not breaker.allow():
            UPSTREAM_ERRORS.labels(upstream.name, "circuit_open").inc()
            raise UpstreamUnavailable(f"The {upstream.name} service is unavailable; retry shortly.",
                                      headers={"Retry-After": str(breaker.retry_after())}, upstream=upstream.name)
        method = scope["method"]
        target = scope.get("raw_path") or scope["path"].encode()
        query = scope["query_string"]
        if query:
            target += b"?" + self._cap_page_size(query)
        url = URL(upstream.base_url + target.decode("latin-1"), encoded=True)

        body_state = _BodyState()
        data: Any = None
        if chunked or (content_length is not None and content_length != b"0"):
            message = await receive()
            first = message.get("body", b"")
            if len(first) > self.max_body:
                raise PayloadTooLarge(f"Request bodies are limited to {self.max_body} bytes.")
            if not message.get("more_body", False):
                data = first
            else:
                data = self._stream_request_body(first, receive, body_state)
                if chunked:
                    headers = [h for h in headers if h[0] != b"content-length"]
        timeout_class = route.timeout if route is not None else Timeout.DEFAULT
        session = upstream.stream_session if timeout_class is Timeout.STREAM else upstream.session
        kwargs: dict[str, Any] = {}
        if timeout_class is Timeout.BULK:
            kwargs["timeout"] = self._bulk_timeout

        sent = time.perf_counter()
        try:
            response = await session.request(
                method, url, headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers], data=data,
                allow_redirects=False, **kwargs)
        except PayloadTooLarge:
            raise
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            if body_state.too_large:
                raise PayloadTooLarge(f"Request bodies are limited to {self.max_body} bytes.") from exc
            if body_state.client_gone:
                return 499
            raise self._upstream_failure(upstream, exc) from exc
        breaker.record_success()
        self._upstream_latency[upstream.name].observe(time.perf_counter() - sent)
        try:
            status = response.status
            key = (upstream.name, route_label, status)
            counter = self._upstream_metrics.get(key)
            if counter is None:
                counter = self._upstream_metrics[key] = UPSTREAM_REQUESTS.labels(*key)
            counter.inc()
            out_headers = _response_headers(response.raw_headers)
            length = response.content_length
            if method == "HEAD" or status in (204, 304):
                await send({"type": "http.response.start", "status": status, "headers": out_headers})
                await send({"type": "http.response.body", "body": b""})
            elif length is not None and length <= _READ_WHOLE_BODY_UP_TO:
                try:
                    body = await response.read()
                except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                    raise self._upstream_failure(upstream, exc) from exc
                await send({"type": "http.response.start", "status": status, "headers": out_headers})
                await send({"type": "http.response.body", "body": body})
            else:
                await send({"type": "http.response.start", "status": status, "headers": out_headers})
                await self._stream_response(response, receive, send, upstream.name)
            return status
        finally:
            response.release()

    async def _stream_request_body(self, first: bytes, receive: Receive, state: _BodyState):  # noqa: ANN202
        received = len(first)
        if first:
            yield first
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                state.client_gone = True
                raise ConnectionAbortedError("client went away")
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > self.max_body:
                state.too_large = True
                raise PayloadTooLarge(f"Request bodies are limited to {self.max_body} bytes.")
            if chunk:
                yield chunk
            if not message.get("more_body", False):
                return

    async def _stream_response(self, response: aiohttp.ClientResponse, receive: Receive, send: Send,
                               upstream: str) -> None:
        """Pass chunks on as they arrive (server-sent events stay live), and stop reading the upstream as soon
        as the client goes away."""

        async def pump() -> None:
            async for chunk in response.content.iter_any():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})

        async def client_gone() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        pumping = asyncio.ensure_future(pump())
        watching = asyncio.ensure_future(client_gone())
        try:
            await asyncio.wait((pumping, watching), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (pumping, watching):
                if not task.done():
                    task.cancel()
            await asyncio.gather(pumping, watching, return_exceptions=True)
        if pumping.done() and not pumping.cancelled() and pumping.exception() is not None:
            exc = pumping.exception()
            UPSTREAM_ERRORS.labels(upstream, "protocol").inc()
            log.warning("upstream.stream_broken", upstream=upstream, error_type=type(exc).__name__)
            raise exc

    def _upstream_failure(self, upstream: Upstream, exc: BaseException) -> DomainError:
        upstream.breaker.record_failure()
        name = upstream.name
        # A body cut off part way (ClientPayloadError) is the service going away while it answered, as a drop
        # before the answer is: 503, retry shortly.
        if isinstance(exc, (aiohttp.ConnectionTimeoutError, aiohttp.ClientConnectorError,
                            aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError, ConnectionError)):
            UPSTREAM_ERRORS.labels(name, "unavailable").inc()
            return UpstreamUnavailable(f"The {name} service is unavailable; retry shortly.",
                                       headers={"Retry-After": "2"}, upstream=name)
        if isinstance(exc, asyncio.TimeoutError):
            UPSTREAM_ERRORS.labels(name, "timeout").inc()
            return UpstreamTimeout(f"The {name} service did not answer in time.", upstream=name)
        UPSTREAM_ERRORS.labels(name, "protocol").inc()
        if isinstance(exc, aiohttp.ClientOSError):
            return UpstreamUnavailable(f"The {name} service is unavailable; retry shortly.",
                                       headers={"Retry-After": "2"}, upstream=name)
        return BadGateway(f"The {name} service gave an invalid response.", upstream=name)

    def _cap_page_size(self, query: bytes) -> bytes:
        if b"limit=" not in query:
            return query
        parts = query.split(b"&")
        for i, part in enumerate(parts):
            if part.startswith(b"limit="):
                value = part[6:]
                if value.isdigit() and int(value) > self.max_page:
                    parts[i] = self._limit_cap
        return b"&".join(parts)

    # ------------------------------------------------------------------------------------------ own endpoints

    async def _own_endpoint(self, path: str, scope: Scope, send: Send) -> int:
        if scope["method"] not in ("GET", "HEAD"):
            raise DomainError("Only GET is allowed here.", status=405, code="method_not_allowed",
                              title="Method not allowed")
        if path == "/healthz":
            return await _send_json(send, 200, {"status": "ok", "service": "gateway"})
        if path == "/readyz":
            return await self._readyz(scope, send)
        if path == "/metrics":
            body = generate_latest()
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", CONTENT_TYPE_LATEST.encode())]})
            await send({"type": "http.response.body", "body": body})
            return 200
        body = await self.openapi.document()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"cache-control", b"no-cache")]})
        await send({"type": "http.response.body", "body": body})
        return 200

    async def _readyz(self, scope: Scope, send: Send) -> int:
        """The gateway is ready whenever it runs; each upstream's readiness is reported by name. Add ?strict=1 to
        get 503 unless every upstream is ready (for scripts waiting for the whole stack)."""
        timeout = aiohttp.ClientTimeout(total=self.settings.readyz_timeout_seconds)

        async def check(upstream: Upstream) -> dict[str, Any]:
            report: dict[str, Any] = {"circuit": upstream.breaker.state_name}
            try:
                async with upstream.session.get(upstream.base_url + "/readyz", timeout=timeout) as response:
                    await response.read()
                    report["status"] = "ok" if response.status == 200 else "not_ready"
                    report["http_status"] = response.status
            except asyncio.TimeoutError:
                report["status"] = "timeout"
            except aiohttp.ClientError:
                report["status"] = "unavailable"
            return report

        names = list(self.upstreams)
        reports = await asyncio.gather(*(check(self.upstreams[n]) for n in names))
        upstreams = dict(zip(names, reports))
        all_ready = all(r["status"] == "ok" for r in reports)
        strict = b"strict=1" in scope["query_string"] or b"strict=true" in scope["query_string"]
        status = 503 if strict and not all_ready else 200
        return await _send_json(send, status, {"status": "ready" if all_ready else "degraded", "service": "gateway",
                                               "upstreams": upstreams})

    def _observe(self, method: str, route: str, status: int, elapsed: float) -> None:
        key = (method, route, status)
        counter = self._request_metrics.get(key)
        if counter is None:
            counter = self._request_metrics[key] = HTTP_REQUESTS.labels("gateway", method, route, status)
        counter.inc()
        histogram = self._latency_metrics.get(route)
        if histogram is None:
            histogram = self._latency_metrics[route] = HTTP_LATENCY.labels("gateway", route)
        histogram.observe(elapsed)


def _plain_path(path: str) -> bool:
    """No empty, "." or ".." segments: what the gateway checked is what the service will route."""
    segments = path.split("/")[1:]
    return not any(s in (".", "..") for s in segments) and "" not in segments[:-1]


def _response_headers(raw: tuple[tuple[bytes, bytes], ...]) -> list[tuple[bytes, bytes]]:
    out = []
    drop = _DROP_RESPONSE_HEADERS
    for name, value in raw:
        lower = name.lower()
        if lower not in drop:
            out.append((lower, value))
    return out


def _cookie(header: bytes | None, name: str) -> str | None:
    """One cookie's value. Parsed leniently by hand: SimpleCookie gives up on a whole header because of one
    odd cookie some other site on the domain set."""
    if not header or name.encode() not in header:
        return None
    for pair in header.decode("latin-1").split(";"):
        key, sep, value = pair.partition("=")
        if sep and key.strip() == name:
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            return value or None
    return None


async def _send_json(send: Send, status: int, payload: Any) -> int:
    body = orjson.dumps(payload)
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
    return status


def build_app(settings: Settings | None = None) -> Gateway:
    return Gateway(settings or Settings())
