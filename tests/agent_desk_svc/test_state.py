"""The agent state machine, handle-time arithmetic and sign-in throttling rules (pure, no database)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from agent_desk_svc.agents.state import (AGENT_STATES, TransitionRefused, chosen_state, handle_seconds,
                                         state_for_call_close, state_for_call_start)
from agent_desk_svc.agents.throttle import FailureRecord, ThrottlePolicy, after_failure, locked_for

T0 = datetime(2024, 3, 31, 0, 30, tzinfo=timezone.utc)  # the night the clocks go forward


@pytest.mark.parametrize("current", ["available", "wrap_up", "break", "offline"])
@pytest.mark.parametrize("target", ["available", "break", "offline"])
def test_people_choose_available_break_offline_when_not_on_a_call(current: str, target: str) -> None:
    assert chosen_state(current, target, has_open_call=False) == target


@pytest.mark.parametrize("target", ["on_call", "wrap_up"])
def test_on_call_and_wrap_up_follow_calls_only(target: str) -> None:
    with pytest.raises(TransitionRefused) as refused:
        chosen_state("available", target, has_open_call=False)
    assert refused.value.code == "state_follows_calls"


@pytest.mark.parametrize("target", ["available", "break", "offline"])
def test_no_state_change_while_a_call_is_open(target: str) -> None:
    with pytest.raises(TransitionRefused) as refused:
        chosen_state("on_call", target, has_open_call=True)
    assert refused.value.code == "call_open"


def test_asking_for_the_current_state_is_a_no_op() -> None:
    for state in AGENT_STATES:
        assert chosen_state(state, state, has_open_call=state == "on_call") == state


def test_unknown_state_is_refused() -> None:
    with pytest.raises(TransitionRefused) as refused:
        chosen_state("available", "lunch", has_open_call=False)
    assert refused.value.code == "unknown_state"


@pytest.mark.parametrize("current", ["available", "wrap_up"])
def test_a_call_starts_from_available_or_wrap_up(current: str) -> None:
    assert state_for_call_start(current) == "on_call"


@pytest.mark.parametrize("current", ["on_call", "break", "offline"])
def test_a_call_cannot_start_from_other_states(current: str) -> None:
    with pytest.raises(TransitionRefused) as refused:
        state_for_call_start(current)
    assert refused.value.code == "agent_not_available"


def test_closing_a_call_moves_to_wrap_up() -> None:
    assert state_for_call_close("on_call") == "wrap_up"
    with pytest.raises(TransitionRefused):
        state_for_call_close("available")


def test_handle_time_is_elapsed_real_time_across_a_clock_change() -> None:
    # 00:30 UTC to 01:45 UTC: the London wall clock jumps an hour, the call lasted 75 minutes.
    assert handle_seconds(T0, T0 + timedelta(minutes=75)) == 4500.0
    assert handle_seconds(T0, T0 + timedelta(seconds=61, milliseconds=250)) == 61.25
    assert handle_seconds(T0, T0) == 0.0
    with pytest.raises(ValueError):
        handle_seconds(T0, T0 - timedelta(seconds=1))


def test_throttle_locks_after_max_failures_then_forgets() -> None:
    policy = ThrottlePolicy(max_failures=3, window=timedelta(minutes=15), lock=timedelta(minutes=5))
    record = None
    for n in range(1, 3):
        record = after_failure(policy, record, T0 + timedelta(seconds=n))
        assert record.failures == n and record.locked_until is None
        assert locked_for(record, T0 + timedelta(seconds=n)) == 0
    record = after_failure(policy, record, T0 + timedelta(seconds=3))
    assert record.failures == 3
    assert record.locked_until == T0 + timedelta(seconds=3, minutes=5)
    assert locked_for(record, T0 + timedelta(seconds=63)) == 240
    assert locked_for(record, T0 + timedelta(minutes=6)) == 0
    # After the lock has run out, the count starts again.
    again = after_failure(policy, record, T0 + timedelta(minutes=6))
    assert again.failures == 1 and again.locked_until is None


def test_throttle_window_forgets_old_failures() -> None:
    policy = ThrottlePolicy(max_failures=3, window=timedelta(minutes=15))
    record = FailureRecord(failures=2, first_failure_at=T0)
    assert after_failure(policy, record, T0 + timedelta(minutes=14)).failures == 3
    assert after_failure(policy, record, T0 + timedelta(minutes=16)).failures == 1
