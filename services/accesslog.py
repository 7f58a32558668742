"""The access log: one JSON line per request, the same keys as the kernel's log lines (event "http.request",
service, level, logger, timestamp, request_id), written straight to stdout and flushed about once a second.

Why not through structlog like every other line: that pipeline (stdlib logging, per-field redaction, stdlib json,
a flush per line) costs ~80-100 us a line, as much as a third of the gateway's whole per-request CPU. These lines
only ever hold values the gateway or service chose (route pattern, never the path or query string; method,
status, timing, upstream, role); the one value a client chooses, its X-Request-ID, goes through the kernel's
NHS-number mask (a client could send a patient's number as its request id)."""

from __future__ import annotations

import asyncio
import logging
import sys
from datetime import datetime, timezone
from typing import Any

import orjson

from services.logging import mask_nhs_numbers


class AccessLog:
    def __init__(self, enabled: bool, level: str, service: str, logger: str) -> None:
        self.enabled = enabled and logging.getLevelName(level.upper()) <= logging.INFO
        self.service = service
        self.logger = logger

    def write(self, *, request_id: str, **fields: Any) -> None:
        """`fields` are the app's own values (route pattern, status, timings), never text a client sent."""
        line = orjson.dumps({
            **fields, "event": "http.request", "service": self.service, "level": "info", "logger": self.logger,
            "timestamp": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"),
            "request_id": mask_nhs_numbers(request_id),
        }).decode()
        try:
            sys.stdout.write(line + "\n")
        except (OSError, ValueError):  # stdout gone (closed pipe): losing access lines must not fail requests
            pass

    @staticmethod
    def flush() -> None:
        try:
            sys.stdout.flush()
        except (OSError, ValueError):
            pass

    @classmethod
    async def flush_every(cls, seconds: float = 1.0) -> None:
        """Run as a task: lines are written without a flush each, so they reach the log at most this late."""
        while True:
            await asyncio.sleep(seconds)
            cls.flush()
