from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.sse import EventSourceResponse, ServerSentEvent
from sqlalchemy.exc import DBAPIError

from agent_desk_svc.live.hub import LiveHub
from services.app import service_router
from services.auth import Staff
from services.errors import ServiceUnavailable

router = service_router(prefix="/api/v1/stream", tags=["live"])

RECONNECT_MILLISECONDS = 3000


def _hub(request: Request) -> LiveHub:
    hub: LiveHub = request.app.state.live
    if hub.closed:
        raise ServiceUnavailable("The service is shutting down; reconnect shortly.", code="shutting_down",
                                 headers={"Retry-After": "2"})
    return hub


@router.get("", response_class=EventSourceResponse)
async def stream(_principal: Staff, hub: Annotated[LiveHub, Depends(_hub)]) -> AsyncIterator[ServerSentEvent]:
    """Server-sent events: `dashboard` (the figures, now and whenever they change), `slot_taken` and
    `slot_freed` (`{ods_code, slot_ids}`). A comment line keeps idle connections open every 15 s."""
    async with hub.connect() as updates:
        try:
            figures = await hub.current_dashboard()
        except (DBAPIError, OSError):
            figures = None
            hub.resend_dashboard()  # the figures follow once the database answers again
        if figures is None:
            yield ServerSentEvent(comment="dashboard unavailable", retry=RECONNECT_MILLISECONDS)
        else:
            yield ServerSentEvent(event="dashboard", data=figures, retry=RECONNECT_MILLISECONDS)
        while (update := await updates.get()) is not None:
            name, data = update
            yield ServerSentEvent(event=name, data=data)
