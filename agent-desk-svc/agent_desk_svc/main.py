"""agent-desk-svc: staff sign-in and accounts, calls, callback tasks, the live dashboard and the audit trail."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI
from sqlalchemy.exc import DBAPIError

from agent_desk_svc import models  # noqa: F401 - every table registers before the app uses the database
from agent_desk_svc.agents.endpoints import auth_router
from agent_desk_svc.agents.endpoints import internal_router as staff_internal_router
from agent_desk_svc.agents.endpoints import router as agents_router
from agent_desk_svc.agents.passwords import Passwords
from agent_desk_svc.agents.service import ensure_admin
from agent_desk_svc.audit.consumers import on_appointment_changed, on_audit_recorded
from agent_desk_svc.audit.endpoints import router as audit_router
from agent_desk_svc.callbacks.consumers import on_appointment_displaced
from agent_desk_svc.callbacks.endpoints import router as callbacks_router
from agent_desk_svc.calls import service as calls
from agent_desk_svc.calls.endpoints import router as calls_router
from agent_desk_svc.dashboard import consumers as dashboard_consumers
from agent_desk_svc.dashboard.endpoints import router as dashboard_router
from agent_desk_svc.live.endpoints import router as live_router
from agent_desk_svc.live.hub import LiveHub
from agent_desk_svc.settings import Settings
from agent_desk_svc.ui.endpoints import mount_static
from agent_desk_svc.ui.endpoints import router as ui_router
from services.app import create_app
from services.groupcommit import GroupCommit
from services.contracts.audit import BookingAuditRecorded, DeskAuditRecorded, RegistryAuditRecorded
from services.contracts.booking import (AppointmentBooked, AppointmentCancelled, AppointmentDisplaced,
                                        AppointmentRescheduled, AppointmentStatusChanged, SlotAvailabilityChanged)
from services.events import Envelope
from services.logging import get_logger

log = get_logger(__name__)

# An appointment change moves the dashboard's counters and free slots and is kept in the audit trail.
_BOOKING_CHANGE = (dashboard_consumers.on_booking_change, dashboard_consumers.on_availability_changed,
                   on_appointment_changed)
HANDLERS = {
    AppointmentBooked: _BOOKING_CHANGE,
    AppointmentCancelled: _BOOKING_CHANGE,
    AppointmentRescheduled: _BOOKING_CHANGE,
    AppointmentStatusChanged: on_appointment_changed,
    AppointmentDisplaced: (on_appointment_displaced, on_appointment_changed),
    SlotAvailabilityChanged: dashboard_consumers.on_availability_changed,
    RegistryAuditRecorded: on_audit_recorded,
    BookingAuditRecorded: on_audit_recorded,
    DeskAuditRecorded: on_audit_recorded,
}


def build_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    passwords = Passwords(settings)

    async def start(app: FastAPI) -> None:
        app.state.passwords = passwords
        # At the 8am peak many agents pick up and wrap up at once: on PostgreSQL those commit together.
        app.state.call_starts = GroupCommit(app.state.db, name="call_starts", run_batch=calls.start_batch,
                                            run_one=calls.start_one, key=calls.start_key)
        app.state.call_closes = GroupCommit(app.state.db, name="call_closes", run_batch=calls.close_batch,
                                            run_one=calls.close_one, key=calls.close_key)
        app.state.live = LiveHub(app.state.db, app.state.messaging, queue_size=settings.live_client_queue_size,
                                 poll_seconds=settings.live_dashboard_poll_seconds)
        app.state.live.start()
        app.state.background = []
        if settings.admin_user and settings.admin_password:
            try:
                await ensure_admin(app.state.db, passwords, settings.admin_user,
                                   settings.admin_password.get_secret_value())
            except (DBAPIError, OSError) as exc:  # start anyway (health, readiness) and keep trying
                log.warning("bootstrap.admin_deferred", error_type=type(exc).__name__)
                app.state.background.append(asyncio.create_task(_bootstrap_admin(app, settings, passwords)))

    async def stop(app: FastAPI) -> None:
        await app.state.live.close()
        for task in app.state.background:
            task.cancel()

    def on_event_applied(envelope: Envelope) -> None:
        live: LiveHub | None = getattr(app.state, "live", None)
        if live is not None:
            live.dashboard_may_have_changed()

    app = create_app(settings, title="agent-desk-svc",
                     routers=[auth_router, agents_router, calls_router, callbacks_router, dashboard_router,
                              live_router, audit_router, ui_router, staff_internal_router],
                     handlers=HANDLERS, on_event_applied=on_event_applied, on_startup=[start], on_shutdown=[stop])
    mount_static(app)
    return app


async def _bootstrap_admin(app: FastAPI, settings: Settings, passwords: Passwords) -> None:
    """Create the configured admin, retrying while the database is not reachable (or not migrated yet)."""
    assert settings.admin_user and settings.admin_password
    delay = 0.2
    while True:
        try:
            await ensure_admin(app.state.db, passwords, settings.admin_user,
                               settings.admin_password.get_secret_value())
            return
        except (DBAPIError, OSError) as exc:
            log.warning("bootstrap.admin_retry", error_type=type(exc).__name__, retry_in=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)
