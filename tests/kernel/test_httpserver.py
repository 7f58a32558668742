"""services.httpserver: a real uvicorn server on 127.0.0.1 with the coalescing protocol, spoken to over a real
socket; the socket's transport is wrapped only to count the send()s it is asked for."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httptools
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from services.httpserver import WRITE_THROUGH_BYTES, CoalescingHttpToolsProtocol, CoalescingTransport

BIG = WRITE_THROUGH_BYTES * 4 + 123


class _CountingTransport:
    """The socket's transport, with each write recorded."""

    def __init__(self, raw: asyncio.Transport, writes: list[bytes]) -> None:
        self._raw = raw
        self._writes = writes

    def write(self, data: bytes) -> None:
        self._writes.append(bytes(data))
        self._raw.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)


def _app() -> Starlette:
    async def small(_request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def echo(request: Request) -> Response:
        return Response(await request.body(), media_type="application/octet-stream")

    async def big(_request: Request) -> Response:
        return Response(b"x" * BIG, media_type="application/octet-stream")

    async def stream(_request: Request) -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            for n in range(200):
                yield f"chunk {n:03d}\n".encode()
                if n % 50 == 0:
                    await asyncio.sleep(0)  # some chunks in later turns of the loop than others

        return StreamingResponse(chunks(), media_type="text/plain")

    async def closing(_request: Request) -> Response:
        return Response(b"last words", headers={"connection": "close"})

    return Starlette(routes=[Route("/small", small), Route("/echo", echo, methods=["POST"]), Route("/big", big),
                             Route("/stream", stream), Route("/closing", closing)])


@asynccontextmanager
async def _connected() -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter, list[bytes]]]:
    """A server, a keep-alive connection to it, and every send() the server made on it."""
    writes: list[bytes] = []

    class Counting(CoalescingHttpToolsProtocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(_CountingTransport(transport, writes))  # type: ignore[arg-type]

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(_app(), host="127.0.0.1", port=port, http=Counting, lifespan="off",
                                           log_config=None, access_log=False))
    task = asyncio.ensure_future(server.serve())
    try:
        for _ in range(200):
            if server.started:
                break
            await asyncio.sleep(0.02)
        assert server.started, "uvicorn did not start"
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            yield reader, writer, writes
        finally:
            writer.close()
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


class _Response:
    def __init__(self) -> None:
        self.status = 0
        self.headers: dict[bytes, bytes] = {}
        self.body = bytearray()
        self.complete = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.lower()] = value

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        self.complete = True


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> _Response:
    """Send one request on an open connection and read its whole response."""
    writer.write(request)
    response = _Response()
    parser = httptools.HttpResponseParser(response)
    while not response.complete:
        data = await asyncio.wait_for(reader.read(65536), 10)
        assert data, "the server closed before the response was complete"
        parser.feed_data(data)
    response.status = parser.get_status_code()
    return response


def _get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nhost: test\r\n\r\n".encode()


async def test_a_response_is_one_send_and_keep_alive_carries_on() -> None:
    async with _connected() as (reader, writer, writes):
        for n in range(3):
            before = len(writes)
            response = await _exchange(reader, writer, _get("/small"))
            assert response.status == 200
            assert bytes(response.body) == b'{"status":"ok"}'
            assert len(writes) - before == 1, f"request {n}: {len(writes) - before} sends"
            assert writes[-1].startswith(b"HTTP/1.1 200 OK") and writes[-1].endswith(b'{"status":"ok"}')


async def test_a_posted_body_comes_back_whole() -> None:
    payload = bytes(range(256)) * 40
    async with _connected() as (reader, writer, writes):
        request = (f"POST /echo HTTP/1.1\r\nhost: test\r\ncontent-length: {len(payload)}\r\n\r\n").encode() + payload
        response = await _exchange(reader, writer, request)
        assert response.status == 200 and bytes(response.body) == payload
        assert len(writes) == 1


async def test_a_large_body_goes_out_without_waiting_and_arrives_whole() -> None:
    async with _connected() as (reader, writer, writes):
        response = await _exchange(reader, writer, _get("/big"))
        assert response.status == 200 and bytes(response.body) == b"x" * BIG
        # Sent at once, headers and body in one send(), rather than held to the end of the turn.
        assert len(writes) == 1 and len(writes[0]) > BIG


async def test_a_streamed_body_arrives_in_order() -> None:
    async with _connected() as (reader, writer, writes):
        response = await _exchange(reader, writer, _get("/stream"))
        assert response.status == 200
        assert bytes(response.body) == b"".join(f"chunk {n:03d}\n".encode() for n in range(200))
        # Chunks made in the same turn of the loop are joined: far fewer sends than chunks, more than one.
        assert 1 < len(writes) < 20


async def test_a_response_before_connection_close_is_sent_before_the_close() -> None:
    async with _connected() as (reader, writer, _writes):
        response = await _exchange(reader, writer, _get("/closing"))
        assert response.status == 200 and bytes(response.body) == b"last words"
        assert await asyncio.wait_for(reader.read(), 10) == b""  # then the server closes


async def test_a_malformed_request_gets_its_400_before_the_close() -> None:
    async with _connected() as (reader, writer, _writes):
        writer.write(b"NOT HTTP AT ALL\r\n\r\n")
        answer = await asyncio.wait_for(reader.read(), 10)
        assert answer.startswith(b"HTTP/1.1 400 ")


class _FakeRaw:
    """Unit tests only: a transport that records what reaches it."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.sent.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


async def test_writes_in_one_turn_reach_the_socket_as_one_at_the_end_of_the_turn() -> None:
    raw = _FakeRaw()
    transport = CoalescingTransport(raw, asyncio.get_running_loop())  # type: ignore[arg-type]
    transport.write(b"head ")
    transport.write(b"body")
    assert raw.sent == []
    await asyncio.sleep(0)
    assert raw.sent == [b"head body"]


async def test_close_sends_what_is_pending_first_and_a_gone_peer_gets_nothing() -> None:
    raw = _FakeRaw()
    transport = CoalescingTransport(raw, asyncio.get_running_loop())  # type: ignore[arg-type]
    transport.write(b"answer")
    transport.close()
    assert raw.sent == [b"answer"] and raw.closed
    transport.write(b"too late")
    await asyncio.sleep(0)
    assert raw.sent == [b"answer"]


async def test_a_buffer_the_caller_reuses_after_writing_goes_out_as_it_was_written() -> None:
    raw = _FakeRaw()
    transport = CoalescingTransport(raw, asyncio.get_running_loop())  # type: ignore[arg-type]
    buffer = bytearray(b"first")
    transport.write(buffer)
    buffer[:] = b"later"
    await asyncio.sleep(0)
    assert raw.sent == [b"first"]


@pytest.mark.parametrize("sizes", [[WRITE_THROUGH_BYTES], [WRITE_THROUGH_BYTES - 10, 10]])
async def test_enough_pending_bytes_go_out_at_once(sizes: list[int]) -> None:
    raw = _FakeRaw()
    transport = CoalescingTransport(raw, asyncio.get_running_loop())  # type: ignore[arg-type]
    for size in sizes:
        transport.write(b"y" * size)
    assert [len(s) for s in raw.sent] == [WRITE_THROUGH_BYTES]
