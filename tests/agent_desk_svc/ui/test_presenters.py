"""How the UI shows durations, NHS numbers and dispositions (the scripts keep the same formats live)."""

from __future__ import annotations

from typing import get_args

import pytest
from agent_desk_svc.calls.schemas import Disposition
from agent_desk_svc.ui import presenters


@pytest.mark.parametrize(("seconds", "shown"), [
    (None, "—"), (float("nan"), "—"), (0, "0:00"), (7, "0:07"), (59.999, "0:59"), (60, "1:00"), (125.4, "2:05"),
    (3599, "59:59"), (3600, "1:00:00"), (3723, "1:02:03"), (-4, "0:00"),
])
def test_durations_are_minutes_and_seconds_rounded_down(seconds, shown) -> None:
    # Rounded down: a hold countdown reads 0:00 only once the time is really up.
    assert presenters.duration(seconds) == shown


@pytest.mark.parametrize(("value", "shown"), [
    ("9434765919", "943 476 5919"), ("943 476 5919", "943 476 5919"), ("943-476-5919", "943 476 5919"),
    ("12345", "12345"), ("", ""), (None, ""), ("94347659190", "94347659190"),
])
def test_nhs_numbers_are_grouped_three_three_four(value, shown) -> None:
    assert presenters.spaced_nhs_number(value) == shown


def test_every_disposition_the_api_takes_has_a_label_and_only_999_ones_follow_a_red_flag() -> None:
    choices = presenters.dispositions()
    assert [c["code"] for c in choices] == list(get_args(Disposition))
    assert all(c["label"] and c["label"] != c["code"] for c in choices)
    assert {c["code"] for c in choices if c["red_flag"]} == {"red_flag_999", "redirected_999"}
    assert {"booked", "cancelled", "rescheduled", "advice_given", "redirected_111", "no_slot_callback",
            "not_registered", "abandoned"} <= {c["code"] for c in choices}


def test_every_agent_state_has_a_label() -> None:
    assert [s["code"] for s in presenters.agent_states()] == ["available", "on_call", "wrap_up", "break", "offline"]
    assert all(s["label"] for s in presenters.agent_states())
