"""The app factory every service uses: health, readiness, metrics, problem+json errors, request ids, JSON logs,
one database session per request committed once before the response, and a lifespan that runs the NATS
connection, the outbox relay and the event consumers."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import DataError, DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import services.contracts  # noqa: F401 - registers every event contract
from services.accesslog import AccessLog
from services.auth import IdentityVerifier
from services.db import Database, sqlite_write_intent
from services.errors import PROBLEM_MEDIA_TYPE, DomainError, problem_body
from services.events import Envelope, EventData, stream_for_subject
from services.eventlog import EventLogPruner
from services.gc_tuning import freeze_startup_objects
from services.ids import new_id
from services.inbox import EventConsumer, Handlers
from services.logging import configure_logging, get_logger, request_id_var
from services.messaging import Messaging
from services.metrics import HTTP_LATENCY, HTTP_REQUESTS
from services.outbox import OutboxRelay
from services.settings import ServiceSettings

log = get_logger(__name__)

MAX_BODY_BYTES = 10 * 1024 * 1024
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


# ---------------------------------------------------------------------------------------------- transactions

_NUL_ESCAPE = b"\\u0000"  # the only way JSON can carry U+0000


def _nul_location(document: Any) -> list[str | int] | None:
    """Where the first string holding U+0000 is in a parsed JSON document (walked without recursion: the
    nesting depth is the client's choice)."""
    pending: list[tuple[Any, list[str | int]]] = [(document, [])]
    while pending:
        value, loc = pending.pop()
        if isinstance(value, str):
            if "\x00" in value:
                return loc
        elif isinstance(value, dict):
            for key, item in value.items():
                if "\x00" in key:
                    return loc
                pending.append((item, [*loc, key]))
        elif isinstance(value, list):
            pending.extend((item, [*loc, i]) for i, item in enumerate(value))
    return None


async def _refuse_nul(request: Request) -> Response | None:
    """No field means U+0000 and PostgreSQL cannot store it in text, so it is refused wherever text comes in,
    before anything runs: the same 422 on every database instead of a stored NUL on one and an error on another."""
    loc: list[str | int] | None = None
    if "\x00" in request.scope["path"]:
        loc = ["path"]
    elif b"%00" in request.scope["query_string"]:
        loc = ["query"]
    elif request.method not in ("GET", "HEAD", "OPTIONS"):
        body = await request.body()  # FastAPI reuses it
        if _NUL_ESCAPE in body:
            try:
                found = _nul_location(json.loads(body))
            except ValueError:
                found = None  # malformed: FastAPI's own parse answers that
            loc = None if found is None else ["body", *found]
    if loc is None:
        return None
    return problem_response(request, status=422, code="validation_error", title="Invalid request",
                            detail="Text may not contain NUL (U+0000) characters.",
                            errors=[{"loc": loc, "msg": "NUL character", "type": "string_nul_character"}])


class TransactionalRoute(APIRoute):
    """Opens the request's session and commits it once, after the handler and before the response is sent,
    so a client never sees 2xx for a change that did not commit. Errors and 4xx/5xx responses roll back."""

    def get_route_handler(self) -> Callable[[Request], Any]:
        handler = super().get_route_handler()
        markers = {getattr(d, "dependency", None) for d in self.dependencies}
        # A GET that does not declare WritesOnRead only reads: it gets a read-only session (services.db).
        read_only = self.methods <= {"GET", "HEAD"} and _writes_on_read not in markers
        own_transaction = _group_committed in markers

        async def route_handler(request: Request) -> Response:
            refused = await _refuse_nul(request)
            if refused is not None:
                return refused
            if own_transaction:
                return await handler(request)
            db: Database = request.app.state.db
            async with db.request_slot():
                token = sqlite_write_intent.set(request.method not in ("GET", "HEAD", "OPTIONS"))
                session = db.session(read_only=read_only)
                request.state.db_session = session
                try:
                    response = await handler(request)
                    if response.status_code < 400:
                        await session.commit()
                    else:
                        await session.rollback()
                except BaseException:
                    await session.rollback()
                    raise
                finally:
                    await session.close()
                    sqlite_write_intent.reset(token)
            return response

        return route_handler


def service_router(**kwargs: Any) -> APIRouter:
    return APIRouter(route_class=TransactionalRoute, **kwargs)


async def get_session(request: Request) -> AsyncSession:
    # async: FastAPI runs a plain `def` dependency in its thread pool, a thread hop per request for nothing.
    return request.state.db_session


DbSession = Annotated[AsyncSession, Depends(get_session)]


async def _writes_on_read() -> None:
    sqlite_write_intent.set(True)


# For GET routes that write (an audit record of a read of patient data): on SQLite their transaction must start
# as a writer, or taking the write lock later can fail at once. Use as `dependencies=[WritesOnRead]`.
WritesOnRead = Depends(_writes_on_read)


async def _group_committed() -> None:
    return None


# For a route whose change is committed by a services.groupcommit.GroupCommit (with other requests' changes, or in
# a transaction of its own): the route opens no session, and answers once that commit is done.
# Use as `dependencies=[GroupCommitted]`.
GroupCommitted = Depends(_group_committed)


# ---------------------------------------------------------------------------------------------- middleware

class RequestContextMiddleware:
    """Request id in and out, an access log line without query strings, per-route metrics, a body size limit."""

    def __init__(self, app: ASGIApp, service: str, access_log: AccessLog, max_body: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.service = service
        self.access_log = access_log
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = None
        length = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                candidate = value.decode("latin-1")
                rid = candidate if _REQUEST_ID_RE.match(candidate) else None
            elif name == b"content-length":
                length = value
        rid = rid or new_id()
        token = request_id_var.set(rid)
        started = time.perf_counter()
        status_holder = [500]
        rid_bytes = rid.encode()

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder[0] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid_bytes)]
            await send(message)

        try:
            if length is not None and length.isdigit() and int(length) > self.max_body:
                await _send_problem(send_wrapper, 413, "payload_too_large", "Payload too large",
                                    f"Request bodies are limited to {self.max_body} bytes.", scope, rid)
                return
            received = 0

            async def receive_limited() -> Message:
                nonlocal received
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > self.max_body:
                        raise _BodyTooLarge
                return message

            try:
                await self.app(scope, receive_limited, send_wrapper)
            except _BodyTooLarge:
                await _send_problem(send_wrapper, 413, "payload_too_large", "Payload too large",
                                    f"Request bodies are limited to {self.max_body} bytes.", scope, rid)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            route_path = getattr(route, "path", "unmatched")
            HTTP_REQUESTS.labels(self.service, scope["method"], route_path, status_holder[0]).inc()
            HTTP_LATENCY.labels(self.service, route_path).observe(elapsed)
            if self.access_log.enabled and route_path not in ("/healthz", "/readyz", "/metrics"):
                self.access_log.write(request_id=rid, method=scope["method"], route=route_path,
                                      status=status_holder[0], ms=round(elapsed * 1000, 2))
            request_id_var.reset(token)


class _BodyTooLarge(Exception):
    pass


async def _send_problem(send: Send, status: int, code: str, title: str, detail: str, scope: Scope, rid: str) -> None:
    body = orjson.dumps(problem_body(status=status, code=code, title=title, detail=detail, instance=scope.get("path"),
                                     request_id=rid))
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", PROBLEM_MEDIA_TYPE.encode()), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


# ---------------------------------------------------------------------------------------------- errors

def json_response(payload: Any, *, status_code: int = 200) -> Response:
    """A body built by the handler to match its route's response_model, sent as it is: FastAPI skips validating and
    serialising a Response (for a 50-slot search page, about a tenth of the request's CPU), while the model still
    documents the shape in the OpenAPI spec. Only for payloads of plain JSON values built field by field."""
    return Response(orjson.dumps(payload), status_code=status_code, media_type="application/json")


def problem_response(request: Request, *, status: int, code: str, title: str, detail: str,
                     headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    body = problem_body(status=status, code=code, title=title, detail=detail, instance=request.url.path,
                        request_id=request_id_var.get(), **extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def _is_refused_value(exc: DBAPIError) -> bool:
    """SQLSTATE class 22 (data exception): the database refused a value, e.g. U+0000 in text, a lone surrogate,
    a number out of range. asyncpg's errors come wrapped as plain DBAPIError, so the code is read off them."""
    sqlstate = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    return isinstance(exc, DataError) or str(sqlstate or "").startswith("22")


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> JSONResponse:
        return problem_response(request, status=exc.status, code=exc.code, title=exc.title, detail=exc.detail,
                                headers=exc.headers, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        # Never echo the input back: it may hold an NHS number or a name.
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
                  for e in exc.errors()]
        malformed = any(e["type"] in ("json_invalid", "json_type") for e in errors)
        return problem_response(request, status=422 if not malformed else 400,
                                code="validation_error" if not malformed else "malformed_json",
                                title="Invalid request" if not malformed else "Malformed JSON",
                                detail="The request does not match the expected shape.", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return problem_response(request, status=exc.status_code, code=code, title=str(exc.detail),
                                detail=str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(DBAPIError)
    async def _database(request: Request, exc: DBAPIError) -> JSONResponse:
        if _is_refused_value(exc):
            # The request's own value, not an outage: retrying it would fail the same way.
            log.info("database.refused_value", error_type=type(exc.orig).__name__)
            return problem_response(request, status=422, code="invalid_value", title="Invalid request",
                                    detail="A value in the request cannot be stored (out of range or not text).")
        return await _unavailable(request, exc)

    @app.exception_handler(OperationalError)
    @app.exception_handler(OSError)
    @app.exception_handler(asyncio.TimeoutError)
    async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
        log.warning("dependency.unavailable", error_type=type(exc).__name__)
        return problem_response(request, status=503, code="dependency_unavailable", title="Service unavailable",
                                detail="A dependency (database) is unavailable; retry shortly.",
                                headers={"Retry-After": "2"})

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("http.unhandled_error", error_type=type(exc).__name__)
        return problem_response(request, status=500, code="internal_error", title="Internal error",
                                detail="Something went wrong; it has been logged.")


# ---------------------------------------------------------------------------------------------- the factory

def create_app(
    settings: ServiceSettings,
    *,
    title: str,
    routers: Sequence[APIRouter],
    handlers: Mapping[type[EventData], Handlers] | None = None,
    on_event_applied: Callable[[Envelope], None] | None = None,
    on_startup: Sequence[Callable[[FastAPI], Any]] = (),
    on_shutdown: Sequence[Callable[[FastAPI], Any]] = (),
) -> FastAPI:
    """Assemble a service. `handlers` maps event contracts to a handler or a tuple of them; one durable consumer
    named after the service is made for each stream the handlers read."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # type: ignore[no-untyped-def]
        configure_logging(settings.service_name, settings.log_level, settings.log_json)
        db = Database(settings.database_url, producer=settings.service_name, pool_size=settings.database_pool_size,
                      pool_pre_ping=settings.database_pool_pre_ping,
                      random_page_cost=settings.database_random_page_cost)
        messaging = Messaging(settings.nats_url, name=settings.service_name, replicas=settings.nats_stream_replicas)
        relay = OutboxRelay(db, messaging, batch_size=settings.outbox_batch_size, poll_seconds=settings.outbox_poll_seconds,
                            linger_seconds=settings.event_linger_seconds)
        app.state.db, app.state.messaging, app.state.relay = db, messaging, relay
        app.state.draining = False
        by_stream: dict[str, dict[type[EventData], Handlers]] = {}
        for contract, handler in (handlers or {}).items():
            by_stream.setdefault(stream_for_subject(contract.subject()), {})[contract] = handler
        consumers = [EventConsumer(db, messaging, durable=settings.service_name, handlers=group,
                                   after_commit=on_event_applied, batch=settings.event_batch_size,
                                   linger_seconds=settings.event_linger_seconds,
                                   fetch_wait_seconds=settings.event_fetch_wait_seconds)
                     for group in by_stream.values()]
        app.state.consumers = consumers
        pruner = EventLogPruner(db, retention_days=settings.event_log_retention_days,
                                interval_seconds=settings.event_log_prune_interval_seconds)
        messaging.start()
        relay.start()
        pruner.start()
        for consumer in consumers:
            consumer.start()
        for hook in on_startup:
            result = hook(app)
            if asyncio.iscoroutine(result):
                await result
        access_log_flusher = asyncio.ensure_future(AccessLog.flush_every())
        freeze_startup_objects()
        log.info("service.started", database=db.dialect)
        try:
            yield
        finally:
            app.state.draining = True
            access_log_flusher.cancel()
            for hook in on_shutdown:
                result = hook(app)
                if asyncio.iscoroutine(result):
                    await result
            await pruner.stop()
            for consumer in consumers:
                await consumer.stop()
            await relay.stop(settings.shutdown_flush_seconds)
            await messaging.close()
            await db.dispose()
            AccessLog.flush()
            log.info("service.stopped")

    app = FastAPI(title=title, version="1.0.0", lifespan=lifespan,
                  openapi_url="/api/v1/openapi.json", docs_url="/api/v1/docs", redoc_url=None)
    app.state.settings = settings
    app.state.identity_verifier = IdentityVerifier(settings.identity_secret)
    app.add_middleware(RequestContextMiddleware, service=settings.service_name,
                       access_log=AccessLog(True, settings.log_level, settings.service_name, "services.app"))
    _install_error_handlers(app)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": settings.service_name}

    @app.get("/readyz", include_in_schema=False)
    async def readyz(request: Request) -> JSONResponse:
        checks: dict[str, str] = {}
        try:
            await asyncio.wait_for(request.app.state.db.ping(), timeout=2)
            checks["database"] = "ok"
        except Exception as exc:  # noqa: BLE001
            checks["database"] = f"unavailable: {type(exc).__name__}"
        checks["nats"] = "ok" if request.app.state.messaging.connected else "unavailable"
        ready = all(v == "ok" for v in checks.values()) and not request.app.state.draining
        return JSONResponse({"status": "ready" if ready else "not_ready", "checks": checks,
                             "draining": request.app.state.draining}, status_code=200 if ready else 503)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    for router in routers:
        app.include_router(router)
    return app
