"""The gateway's own refusals, as the kernel's DomainErrors (one problem+json shape for the whole API)."""

from __future__ import annotations

import orjson
from starlette.types import Send

from services.errors import PROBLEM_MEDIA_TYPE, DomainError, problem_body


class PayloadTooLarge(DomainError):
    status, code, title = 413, "payload_too_large", "Payload too large"


class RateLimited(DomainError):
    status, code, title = 429, "rate_limited", "Too many requests"


class BadGateway(DomainError):
    status, code, title = 502, "bad_gateway", "Bad gateway"


class UpstreamUnavailable(DomainError):
    status, code, title = 503, "upstream_unavailable", "Service unavailable"


class UpstreamTimeout(DomainError):
    status, code, title = 504, "upstream_timeout", "Upstream timed out"


_PROBLEM_TYPE = PROBLEM_MEDIA_TYPE.encode()


async def send_problem(send: Send, error: DomainError, *, path: str, request_id: str,
                       extra_headers: list[tuple[bytes, bytes]] = ()) -> int:
    body = orjson.dumps(problem_body(status=error.status, code=error.code, title=error.title, detail=error.detail,
                                     instance=path, request_id=request_id, **error.extra))
    headers = [(b"content-type", _PROBLEM_TYPE), (b"content-length", str(len(body)).encode()),
               *((k.lower().encode(), str(v).encode()) for k, v in error.headers.items()), *extra_headers]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
    return error.status
