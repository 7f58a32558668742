"""How the UI names and shows things: disposition and state labels, durations, NHS numbers. Pages get their
first figures from here; the scripts keep the same formats when figures change live."""

from __future__ import annotations

import math
from typing import get_args

from agent_desk_svc.agents.state import AGENT_STATES
from agent_desk_svc.calls.schemas import Disposition

DISPOSITION_LABELS: dict[str, str] = {
    "booked": "Booked an appointment",
    "cancelled": "Cancelled an appointment",
    "rescheduled": "Rescheduled an appointment",
    "advice_given": "Advice given",
    "redirected_999": "Redirected to 999",
    "redirected_111": "Redirected to 111",
    "no_slot_callback": "No slot — call back at release",
    "not_registered": "Not registered with a practice here",
    "abandoned": "Abandoned (caller hung up)",
    "red_flag_999": "Red flag — told to ring 999",
}
# After a red-flag answer the call may only end as a 999 redirection.
RED_FLAG_DISPOSITIONS: tuple[str, ...] = ("red_flag_999", "redirected_999")

STATE_LABELS: dict[str, str] = {
    "available": "Available",
    "on_call": "On a call",
    "wrap_up": "Wrap-up",
    "break": "On a break",
    "offline": "Offline",
}

CALLBACK_SOURCE_LABELS: dict[str, str] = {
    "displaced": "Displaced appointment",
    "practice": "Request from the practice",
    "staff": "Raised by the centre",
}


def dispositions() -> list[dict[str, str | bool]]:
    """Every disposition the calls API accepts, in the order agents pick from, with its label."""
    return [{"code": code, "label": DISPOSITION_LABELS[code], "red_flag": code in RED_FLAG_DISPOSITIONS}
            for code in get_args(Disposition)]


def agent_states() -> list[dict[str, str]]:
    return [{"code": state, "label": STATE_LABELS[state]} for state in AGENT_STATES]


def duration(seconds: float | None) -> str:
    """A handle time or countdown: "0:07", "2:05", "1:02:03"; "—" when there is none. Whole seconds, rounded
    down, so a countdown shows 0:00 only once the time is really up."""
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return "—"
    whole = max(0, math.floor(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def spaced_nhs_number(value: str | None) -> str:
    """The 3-3-4 grouping people read NHS numbers in; anything that is not 10 digits is shown as it is."""
    if not value:
        return ""
    digits = "".join(ch for ch in value if ch.isdigit())
    if len(digits) != 10 or len(digits) != len(value.replace(" ", "").replace("-", "")):
        return value
    return f"{digits[:3]} {digits[3:6]} {digits[6:]}"
