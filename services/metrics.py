"""Prometheus metrics, declared once per process (every service process imports the same names)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter("http_requests_total", "HTTP requests handled", ["service", "method", "route", "status"])
HTTP_LATENCY = Histogram(
    "http_request_duration_seconds", "HTTP request latency", ["service", "route"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
EVENTS_PUBLISHED = Counter("outbox_events_published_total", "Events the outbox relay published", ["service"])
PUBLISH_FAILURES = Counter("outbox_publish_failures_total", "Outbox relay batches that failed", ["service"])
OUTBOX_PENDING = Gauge("outbox_pending_events", "Events waiting in the outbox at the last relay pass", ["service"])
EVENTS_APPLIED = Counter("inbox_events_applied_total", "Events applied by a consumer", ["service", "subject"])
EVENTS_DUPLICATE = Counter("inbox_events_duplicate_total", "Redelivered events skipped by the inbox", ["service"])
EVENTS_FAILED = Counter("inbox_events_failed_total", "Event handler failures (retried)", ["service", "subject"])
EVENTS_POISON = Counter("inbox_events_poison_total", "Events given up on after repeated failures", ["service", "subject"])
GROUP_COMMIT_SIZE = Histogram("group_commit_batch_size", "Requests committed together in one group-commit batch",
                              ["name"], buckets=(1, 2, 4, 8, 16, 32, 64, 128))
GROUP_COMMIT_FALLBACKS = Counter("group_commit_fallbacks_total",
                                 "Group-commit batches that rolled back and ran each request on its own", ["name"])
