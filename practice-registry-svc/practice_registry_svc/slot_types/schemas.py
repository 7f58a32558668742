from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StringConstraints

from practice_registry_svc.practices.schemas import ClockTime, Name

Channel = Literal["in_person", "telephone", "video", "home_visit"]
SlotTypeCode = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9._-]{1,40}$")]
# Whole, non-negative numbers only: "5", 5.5 or true are refused rather than guessed at.
Days = Annotated[StrictInt, Field(ge=0, le=366)]
Minutes = Annotated[StrictInt, Field(ge=0, le=60 * 24 * 60)]


class ReleaseRule(BaseModel):
    """An embargo: the slot becomes bookable `days_before` its day, at `at_time` (Europe/London)."""

    model_config = ConfigDict(extra="forbid")

    days_before: Days
    at_time: ClockTime


class SlotTypeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: SlotTypeCode
    name: Name
    channel: Channel
    bookable_by_centre: StrictBool
    max_days_ahead: Days
    min_notice_minutes: Minutes
    release: ReleaseRule | None = None
    shared_with_pcn: StrictBool = False


class SlotTypeOut(BaseModel):
    code: str
    name: str
    channel: Channel
    bookable_by_centre: bool
    max_days_ahead: int
    min_notice_minutes: int
    release: ReleaseRule | None
    shared_with_pcn: bool
