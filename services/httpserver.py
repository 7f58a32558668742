"""The HTTP/1.1 protocol every server here runs: uvicorn's httptools protocol, with a response's writes coalesced.

uvicorn writes a response's status line and headers as soon as the app sends `http.response.start`, and its body
in a second write: two send() calls per response, and on loopback two TCP segments, so the peer (the gateway's
upstream client, a load generator, a browser) is often woken twice per response and parses it in two halves.
Writes made in the same turn of the event loop are joined here and handed to the socket at the end of that turn,
one send() per response. Measured on the bare endpoint of `bench limits` (2026-12-05, 3 alternating pairs, 32
clients): server CPU per request 67-83 -> 62-66 us, the client's 54-58 -> 31-36 us, requests/s up 9-29 %.

A write that is large, or that would make the pending writes large, goes out at once (after what is pending), so
a streamed body keeps the transport's own flow control (pause_writing) instead of piling up here."""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# Above this, waiting for the end of the turn saves nothing worth holding memory for.
WRITE_THROUGH_BYTES = 64 * 1024

HTTP_PROTOCOL = "services.httpserver:CoalescingHttpToolsProtocol"


class CoalescingTransport:
    """Stands in for the connection's transport in front of the protocol; everything but write() and close()
    passes straight through."""

    __slots__ = ("raw", "_loop", "_pending", "_pending_bytes", "_scheduled")

    def __init__(self, raw: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self.raw = raw
        self._loop = loop
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._scheduled = False

    def write(self, data: bytes) -> None:
        if type(data) is not bytes:  # a transport takes its copy at write(): a caller may reuse a bytearray after
            data = bytes(data)
        self._pending.append(data)
        self._pending_bytes += len(data)
        if self._pending_bytes >= WRITE_THROUGH_BYTES:
            self.flush()
        elif not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._flush_scheduled)

    def _flush_scheduled(self) -> None:
        self._scheduled = False
        self.flush()

    def flush(self) -> None:
        pending = self._pending
        if not pending:
            return
        self._pending = []
        self._pending_bytes = 0
        if not self.raw.is_closing():  # the peer went away: what it would have read is dropped, as a write would be
            self.raw.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def close(self) -> None:
        self.flush()  # a response written just before the close (Connection: close) still goes out first
        self.raw.close()

    # What uvicorn calls on every request, spelled out rather than left to __getattr__ (a slower lookup).
    def is_closing(self) -> bool:
        return self.raw.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.raw.get_extra_info(name, default)

    def pause_reading(self) -> None:
        self.raw.pause_reading()

    def resume_reading(self) -> None:
        self.raw.resume_reading()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.transport = CoalescingTransport(transport, self.loop)  # type: ignore[assignment]

    def handle_websocket_upgrade(self) -> None:
        # The websocket protocol takes over the connection: it gets the socket's own transport.
        if isinstance(self.transport, CoalescingTransport):
            self.transport.flush()
            self.transport = self.transport.raw
        super().handle_websocket_upgrade()
