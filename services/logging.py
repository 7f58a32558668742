"""Structured JSON logs. NHS numbers are masked in every rendered line, and fields that can hold a patient's
name or NHS number are redacted before rendering, whoever logged them (our code, uvicorn, a library)."""

from __future__ import annotations

import contextvars
import logging
import re
import sys
from typing import Any

import structlog

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

# Ten digits, optionally spaced 3-3-4 or hyphenated, not part of a longer number.
_NHS_RE = re.compile(r"(?<!\d)(\d{3})[ -]?(\d{3})[ -]?(\d{4})(?!\d)")
_SENSITIVE_KEYS = frozenset({
    "nhs_number", "family", "given", "patient_name", "name_family", "name_given", "birth_date",
    "postcode", "phone", "password", "key", "api_key", "token", "authorization", "notes",
})


def mask_nhs_numbers(text: str) -> str:
    return _NHS_RE.sub(lambda m: "*******" + m.group(3)[-3:], text)


def mask_nhs_number(value: str | None) -> str:
    """A loggable stand-in for one NHS number: its last three digits."""
    digits = re.sub(r"\D", "", value or "")
    return "*******" + digits[-3:] if digits else ""


def _mask_value(value: Any) -> Any:
    if isinstance(value, str):
        return mask_nhs_numbers(value)
    if isinstance(value, dict):
        return {k: ("[redacted]" if str(k).lower() in _SENSITIVE_KEYS else _mask_value(v)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_mask_value(v) for v in value]
    return value


def redact_patient_data(_logger: Any, _name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    return {k: ("[redacted]" if k.lower() in _SENSITIVE_KEYS else _mask_value(v)) for k, v in event_dict.items()}


def add_request_id(_logger: Any, _name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    rid = request_id_var.get()
    if rid and "request_id" not in event_dict:
        event_dict["request_id"] = rid
    return event_dict


class _MaskingRenderer:
    """Last line of defence: masks NHS numbers in the final rendered text (exceptions, foreign messages)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __call__(self, logger: Any, name: str, event_dict: dict[str, Any]) -> str:
        return mask_nhs_numbers(self.inner(logger, name, event_dict))


def configure_logging(service: str, level: str = "INFO", json: bool = True) -> None:
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_request_id,
        redact_patient_data,
    ]
    renderer = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            _MaskingRenderer(renderer),
        ],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    structlog.contextvars.bind_contextvars(service=service)
    # Uvicorn's access log prints query strings (which can carry NHS numbers); the app writes its own.
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    logging.getLogger("nats").setLevel("WARNING")
    # httpx logs whole URLs at INFO, query strings (names, dates of birth) included.
    for name in ("httpx", "httpcore", "aiohttp.access"):
        logging.getLogger(name).setLevel("WARNING")


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    return structlog.get_logger(name)
