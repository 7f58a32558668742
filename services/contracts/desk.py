"""Events published by agent-desk-svc."""

from __future__ import annotations

from datetime import datetime

from services.events import EventData


class AgentStateChanged(EventData):
    """An agent's state moved (chosen by a person, or following a call); live views update from it."""

    event_type = "desk.agent.state_changed"
    username: str
    state: str
    previous_state: str
    at: datetime


class CallStarted(EventData):
    event_type = "desk.call.started"
    call_id: str
    agent: str
    ods_code: str | None = None
    started_at: datetime


class CallWrappedUp(EventData):
    event_type = "desk.call.wrapped_up"
    call_id: str
    agent: str
    ods_code: str | None = None
    disposition: str
    handle_seconds: float
    appointment_id: str | None = None


class CallbackCreated(EventData):
    event_type = "desk.callback.created"
    callback_id: str
    ods_code: str
    source: str
    reason: str
    due_by: datetime | None = None


class CallbackCompleted(EventData):
    event_type = "desk.callback.completed"
    callback_id: str
    ods_code: str
    outcome: str
