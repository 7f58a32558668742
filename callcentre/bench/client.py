"""A lean HTTP/1.1 client for load generation: one keep-alive connection per virtual agent, asyncio protocol +
httptools, JSON bodies with orjson. A general-purpose client (httpx) costs several times more CPU per request,
and on a small machine the load generator shares the cores with the stack it measures."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import httptools
import orjson

# Every request is bounded: a drill must see a hang as a failure, not wait for it.
DEFAULT_TIMEOUT = 15.0
TIMEOUT_STATUS = 0  # how a request that got no answer in time is counted
CONNECTION_ERROR_STATUS = -1  # refused or cut off


@dataclass(slots=True)
class Response:
    status: int
    body: bytes
    content_type: str = ""

    def json(self) -> Any:
        return orjson.loads(self.body) if self.body else None


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[Response] | None = None
        self.chunks: list[bytes] = []
        self.content_type = ""
        self.keep_alive = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ConnectionError(f"bad response: {exc}"))

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"content-type":
            self.content_type = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        self.keep_alive = self.parser.should_keep_alive()
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(Response(self.parser.get_status_code(), b"".join(self.chunks), self.content_type))

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self._fail(ConnectionError("connection lost"))

    def _fail(self, exc: Exception) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        if self.transport is not None:
            self.transport.close()
            self.transport = None

    def send(self, raw: bytes) -> asyncio.Future[Response]:
        self.chunks = []
        self.content_type = ""
        self.waiter = asyncio.get_running_loop().create_future()
        assert self.transport is not None
        self.transport.write(raw)
        return self.waiter


class HttpClient:
    """One connection, one request at a time (like a browser tab of one agent). Never raises for HTTP or
    connection failures: a Response with status 0 (timed out) or -1 (connection failed) instead."""

    def __init__(self, base_url: str, headers: dict[str, str] | None = None, timeout: float = DEFAULT_TIMEOUT) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http":
            raise ValueError("the load generator speaks plain HTTP to 127.0.0.1")
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.timeout = timeout
        fixed = {"Host": f"{self.host}:{self.port}", "Accept": "application/json", **(headers or {})}
        self._fixed = "".join(f"{k}: {v}\r\n" for k, v in fixed.items()).encode("latin-1")
        self._protocol: _Protocol | None = None

    async def _connection(self) -> _Protocol:
        protocol = self._protocol
        if protocol is None or protocol.transport is None or protocol.transport.is_closing():
            loop = asyncio.get_running_loop()
            _, protocol = await loop.create_connection(_Protocol, self.host, self.port)
            self._protocol = protocol
        return protocol

    async def request(self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None,
                      headers: dict[str, str] | None = None, timeout: float | None = None) -> Response:
        if params:
            path = f"{path}?{urlencode(params, doseq=True)}"
        body = b"" if json is None else orjson.dumps(json)
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items()).encode("latin-1")
        head = f"{method} {path} HTTP/1.1\r\n".encode("latin-1") + self._fixed + extra
        if json is not None or method in ("POST", "PUT", "PATCH"):
            head += b"Content-Type: application/json\r\nContent-Length: " + str(len(body)).encode() + b"\r\n"
        raw = head + b"\r\n" + body
        try:
            protocol = await asyncio.wait_for(self._connection(), timeout=timeout or self.timeout)
            response = await asyncio.wait_for(protocol.send(raw), timeout=timeout or self.timeout)
        except asyncio.TimeoutError:
            self.close()  # the answer may still come: never read it as the next request's
            return Response(TIMEOUT_STATUS, b"")
        except (ConnectionError, OSError):
            self.close()
            return Response(CONNECTION_ERROR_STATUS, b"")
        if not protocol.keep_alive:
            self.close()
        return response

    async def get(self, path: str, **kwargs: Any) -> Response:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> Response:
        return await self.request("POST", path, **kwargs)

    def close(self) -> None:
        if self._protocol is not None and self._protocol.transport is not None:
            self._protocol.transport.close()
        self._protocol = None
