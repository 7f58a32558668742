"""Patient data never reaches the logs in full, whoever logs it."""

from __future__ import annotations

import io
import logging

import structlog

from services.logging import configure_logging, get_logger, mask_nhs_number, mask_nhs_numbers


def _capture() -> io.StringIO:
    stream = io.StringIO()
    logging.getLogger().handlers[0].stream = stream  # type: ignore[attr-defined]
    return stream


def test_nhs_numbers_are_masked_in_free_text():
    assert mask_nhs_numbers("patient 9434765919 and 943 476 5919 and 943-476-5919") == (
        "patient *******919 and *******919 and *******919")
    assert mask_nhs_numbers("order 12345678901234") == "order 12345678901234"  # longer numbers are not NHS numbers
    assert mask_nhs_number("943 476 5919") == "*******919"


def test_structured_and_foreign_log_lines_hide_patient_data():
    configure_logging("test-svc", "INFO", json=True)
    structlog.reset_defaults()
    configure_logging("test-svc", "INFO", json=True)
    stream = _capture()
    log = get_logger("test")
    log.info("lookup", nhs_number="9434765919", family="O'Brien", given="Siobhan", query="nhs 9434765919")
    logging.getLogger("uvicorn.error").warning("client sent 943 476 5919 in a path")
    try:
        raise ValueError("bad row 9434765919")
    except ValueError:
        log.exception("failed")
    text = stream.getvalue()
    assert "9434765919" not in text and "943 476 5919" not in text
    assert "O'Brien" not in text and "Siobhan" not in text
    assert "*******919" in text and "[redacted]" in text
    assert '"service": "test-svc"' in text
