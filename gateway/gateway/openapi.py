"""One OpenAPI document for the whole public API: the three services' specs merged, with the security schemes
clients use at the gateway. Each service's spec is cached; one that could not be fetched is retried on later
requests (at most every few seconds) and named in `x-unavailable` meanwhile."""

from __future__ import annotations

import asyncio
import copy
import time
from typing import Any

import aiohttp
import orjson

from gateway.routes import UPSTREAM_BY_PREFIX, match_route, split_api_path
from gateway.upstreams import Upstream
from services.logging import get_logger

log = get_logger(__name__)

SPEC_PATH = "/api/v1/openapi.json"
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_HIDDEN_HEADERS = {"x-callcentre-identity", "authorization", "x-api-key"}

SECURITY_SCHEMES = {
    "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                   "description": "Staff token from POST /api/v1/auth/token."},
    "cookieAuth": {"type": "apiKey", "in": "cookie", "name": "cc_session",
                   "description": "The agent UI's session cookie; state-changing requests also need header "
                                  "X-CSRF-Token equal to the cc_csrf cookie."},
    "apiKeyAuth": {"type": "apiKey", "in": "header", "name": "X-API-Key",
                   "description": "A practice's API key; it acts for that practice only."},
}
_PROBLEM_SCHEMA = {
    "type": "object", "title": "Problem",
    "properties": {"type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                   "detail": {"type": "string"}, "code": {"type": "string"}, "instance": {"type": "string"},
                   "request_id": {"type": "string"}},
    "required": ["type", "title", "status", "code"],
}
_GATEWAY_RESPONSES = {
    "401": "No or bad credentials.",
    "403": "Authenticated but not allowed (role, another practice's data, CSRF).",
    "413": "Request body over 10 MB.",
    "429": "Rate limit reached; see Retry-After.",
    "503": "The service is unavailable; retry shortly.",
    "504": "The service did not answer in time.",
}


class MergedOpenApi:
    def __init__(self, upstreams: dict[str, Upstream], cache_seconds: float, retry_seconds: float) -> None:
        self.upstreams = upstreams
        self.cache_seconds = cache_seconds
        self.retry_seconds = retry_seconds
        self._specs: dict[str, tuple[dict[str, Any], float]] = {}  # name -> (spec, fetched_at)
        self._attempted: dict[str, float] = {}
        self._document: bytes | None = None
        self._lock = asyncio.Lock()

    async def document(self) -> bytes:
        if self._document is not None and not self._stale():
            return self._document
        async with self._lock:
            if self._document is None or self._stale():
                await self._refresh()
                self._document = orjson.dumps(self._merge())
        return self._document

    def _stale(self) -> bool:
        now = time.monotonic()
        for name in self.upstreams:
            cached = self._specs.get(name)
            if cached is None:
                if now - self._attempted.get(name, 0.0) >= self.retry_seconds:
                    return True
            elif now - cached[1] >= self.cache_seconds:
                return True
        return False

    async def _refresh(self) -> None:
        now = time.monotonic()
        wanted = [name for name in self.upstreams
                  if (name not in self._specs and now - self._attempted.get(name, 0.0) >= self.retry_seconds)
                  or (name in self._specs and now - self._specs[name][1] >= self.cache_seconds)]
        results = await asyncio.gather(*(self._fetch(self.upstreams[name]) for name in wanted))
        for name, spec in zip(wanted, results):
            self._attempted[name] = now
            if spec is not None:
                self._specs[name] = (spec, now)
            # A spec that could not be refreshed stays as it was: stale beats missing.

    async def _fetch(self, upstream: Upstream) -> dict[str, Any] | None:
        try:
            async with upstream.session.get(upstream.base_url + SPEC_PATH,
                                            timeout=aiohttp.ClientTimeout(total=3)) as response:
                if response.status != 200:
                    log.warning("openapi.fetch_failed", upstream=upstream.name, status=response.status)
                    return None
                spec = orjson.loads(await response.read())
                return spec if isinstance(spec, dict) else None
        except (aiohttp.ClientError, asyncio.TimeoutError, orjson.JSONDecodeError) as exc:
            log.warning("openapi.fetch_failed", upstream=upstream.name, error_type=type(exc).__name__)
            return None

    def _merge(self) -> dict[str, Any]:
        return merge_specs({name: spec for name, (spec, _) in self._specs.items()},
                           unavailable=[n for n in self.upstreams if n not in self._specs])


def merge_specs(specs: dict[str, dict[str, Any]], unavailable: list[str]) -> dict[str, Any]:
    """Merge the services' specs. Only public /api/v1 paths a service is routed for are kept; component names
    that clash with a different definition are prefixed with the service's name (and its $refs rewritten)."""
    merged: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "GP appointment centre API", "version": "1.0.0",
                 "description": "The public API, through the gateway. Services: "
                                + ", ".join(sorted(specs)) + "."},
        "servers": [{"url": "/"}],
        "paths": {},
        "components": {"schemas": {"Problem": _PROBLEM_SCHEMA}, "securitySchemes": SECURITY_SCHEMES},
        "security": [{"bearerAuth": []}, {"cookieAuth": []}, {"apiKeyAuth": []}],
        "tags": [],
    }
    if unavailable:
        merged["x-unavailable"] = sorted(unavailable)
    components = merged["components"]
    seen_tags: set[str] = set()
    for name in sorted(specs):
        spec = copy.deepcopy(specs[name])
        renames: dict[str, str] = {}
        for kind, entries in (spec.get("components") or {}).items():
            if kind == "securitySchemes" or not isinstance(entries, dict):
                continue
            target = components.setdefault(kind, {})
            for entry_name, definition in entries.items():
                if entry_name in target and target[entry_name] != definition:
                    renames[f"#/components/{kind}/{entry_name}"] = f"#/components/{kind}/{name}_{entry_name}"
        if renames:
            spec = _rewrite_refs(spec, renames)
        for kind, entries in (spec.get("components") or {}).items():
            if kind == "securitySchemes" or not isinstance(entries, dict):
                continue
            target = components.setdefault(kind, {})
            for entry_name, definition in entries.items():
                ref = f"#/components/{kind}/{entry_name}"
                final = renames.get(ref, ref).rsplit("/", 1)[1]
                target[final] = definition
        for path, item in (spec.get("paths") or {}).items():
            segments = split_api_path(path)
            if segments is None or path == SPEC_PATH or UPSTREAM_BY_PREFIX[segments[2]] != name:
                continue
            merged["paths"][path] = _public_path_item(item, segments, name)
        for tag in spec.get("tags") or []:
            if isinstance(tag, dict) and tag.get("name") not in seen_tags:
                seen_tags.add(tag.get("name"))
                merged["tags"].append(tag)
    return merged


def _public_path_item(item: dict[str, Any], segments: list[str], upstream: str) -> dict[str, Any]:
    item = dict(item)
    if "parameters" in item:
        item["parameters"] = _visible_parameters(item["parameters"])
    for method in _METHODS:
        operation = item.get(method)
        if not isinstance(operation, dict):
            continue
        operation = dict(operation)
        operation["x-upstream"] = upstream
        if "parameters" in operation:
            operation["parameters"] = _visible_parameters(operation["parameters"])
        matched = match_route(method.upper(), segments)
        public = matched is not None and matched[0].public
        if public:
            operation["security"] = []
        responses = dict(operation.get("responses") or {})
        for status, description in _GATEWAY_RESPONSES.items():
            if status == "401" and public:
                continue
            responses.setdefault(status, {"description": description, "content": {
                "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}})
        operation["responses"] = responses
        item[method] = operation
    return item


def _visible_parameters(parameters: Any) -> Any:
    """Credentials and the internal identity header are the gateway's business, not a parameter."""
    if not isinstance(parameters, list):
        return parameters
    return [p for p in parameters
            if not (isinstance(p, dict) and p.get("in") in ("header", "cookie")
                    and str(p.get("name", "")).lower() in _HIDDEN_HEADERS | {"cc_session", "cc_csrf"})]


def _rewrite_refs(node: Any, renames: dict[str, str]) -> Any:
    if isinstance(node, dict):
        return {k: (renames.get(v, v) if k == "$ref" and isinstance(v, str) else _rewrite_refs(v, renames))
                for k, v in node.items()}
    if isinstance(node, list):
        return [_rewrite_refs(v, renames) for v in node]
    return node
