"""Value types this service's schemas share."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, PlainSerializer, StringConstraints

from services.timeutil import LONDON, to_london


def _upper(value: str) -> str:
    return value.upper()


def _london_if_naive(value: datetime) -> datetime:
    """A time without an offset is read as Europe/London wall-clock time."""
    return value.replace(tzinfo=LONDON) if value.tzinfo is None else value


OdsCode = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9]{3,10}$"),
                    AfterValidator(_upper)]

# Times come in with or without an offset and always go out as London time with its offset.
TimeIn = Annotated[datetime, AfterValidator(_london_if_naive)]
TimeOut = Annotated[datetime, PlainSerializer(lambda v: to_london(v).isoformat(), return_type=str)]
