"""The agent's state machine, kept pure so its rules are easy to read and test.

An agent is `on_call` exactly while they have an open call: starting a call moves them to `on_call`, closing it
to `wrap_up` (after-call work), and only calls move them in or out of `on_call`. Everything else (available,
break, offline, and back from wrap-up) is the agent's or a supervisor's choice."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, get_args

AgentState = Literal["available", "on_call", "wrap_up", "break", "offline"]
AGENT_STATES: tuple[str, ...] = get_args(AgentState)

# States a person may choose with PUT .../state; on_call and wrap_up follow from calls.
CHOSEN_STATES = frozenset({"available", "break", "offline"})
# An agent takes a new call when free, or straight from the previous call's wrap-up.
CAN_START_CALL = frozenset({"available", "wrap_up"})


class TransitionRefused(Exception):  # noqa: N818 - a rule saying no, not a fault
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


def chosen_state(current: str, target: str, *, has_open_call: bool) -> str:
    """The state after someone asks for `target`; raises TransitionRefused when the rules say no."""
    if target not in AGENT_STATES:
        raise TransitionRefused("unknown_state", f"{target!r} is not an agent state.")
    if target == current:
        return current
    if target not in CHOSEN_STATES:
        raise TransitionRefused("state_follows_calls", f"{target} is set by starting or closing a call.")
    if has_open_call or current == "on_call":
        raise TransitionRefused("call_open", "Close the open call before changing state.")
    return target


def state_for_call_start(current: str) -> str:
    if current not in CAN_START_CALL:
        raise TransitionRefused("agent_not_available",
                                f"An agent who is {current} cannot take a call; become available first.")
    return "on_call"


def state_for_call_close(current: str) -> str:
    if current != "on_call":
        raise TransitionRefused("not_on_call", f"An agent who is {current} has no call to close.")
    return "wrap_up"


def handle_seconds(started_at: datetime, closed_at: datetime) -> float:
    """Talk plus hold time of one call; both times must carry an offset (aware) or both be UTC-naive."""
    seconds = (closed_at - started_at).total_seconds()
    if seconds < 0:
        raise ValueError("a call cannot close before it started")
    return round(seconds, 3)
