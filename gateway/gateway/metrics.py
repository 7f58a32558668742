"""The gateway's own Prometheus metrics. Request counts and latency per route pattern use the kernel's
`http_requests_total` / `http_request_duration_seconds` (service="gateway"); these add the upstream side."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

UPSTREAM_REQUESTS = Counter("gateway_upstream_requests_total", "Requests forwarded to an upstream",
                            ["upstream", "route", "status"])
UPSTREAM_LATENCY = Histogram(
    "gateway_upstream_response_seconds", "Time until the upstream's response headers arrived", ["upstream"],
    buckets=(0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
UPSTREAM_ERRORS = Counter("gateway_upstream_errors_total", "Upstream calls that failed",
                          ["upstream", "reason"])  # reason: unavailable, timeout, circuit_open, protocol
BREAKER_STATE = Gauge("gateway_circuit_breaker_state", "0 closed, 1 half-open, 2 open", ["upstream"])
REJECTED = Counter("gateway_rejected_requests_total", "Requests the gateway refused itself", ["code"])
API_KEY_LOOKUPS = Counter("gateway_api_key_lookups_total", "API key checks", ["result"])  # hit, miss, error
