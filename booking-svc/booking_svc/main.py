"""booking-svc: rotas, slots, holds, appointments and the practices' change feed."""

from __future__ import annotations

from fastapi import FastAPI

from booking_svc.appointments import service as appointments
from booking_svc.appointments.endpoints import router as appointments_router
from booking_svc.feed.endpoints import router as feed_router
from booking_svc.holds import service as holds
from booking_svc.holds.endpoints import router as holds_router
from booking_svc.registry.consumers import HANDLERS as REGISTRY_HANDLERS
from booking_svc.registry.consumers import RULES_EVENTS
from booking_svc.registry.repository import PracticeRules
from booking_svc.rotas.endpoints import router as rotas_router
from booking_svc.settings import Settings
from booking_svc.slots.endpoints import router as slots_router
from booking_svc.slots.repository import EmbargoedCounts
from services.app import create_app
from services.events import Envelope
from services.groupcommit import GroupCommit
from services.timeutil import utcnow


def build_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    def start(app: FastAPI) -> None:
        # At the 8am peak many holds and bookings arrive at once: on PostgreSQL they commit together, a transaction
        # and a round trip per statement for the lot instead of for each.
        app.state.bookings = GroupCommit(app.state.db, name="bookings", run_batch=appointments.book_batch,
                                         run_one=appointments.book_one, key=appointments.booking_key,
                                         max_batch=settings.booking_batch_size)
        app.state.holds = GroupCommit(app.state.db, name="holds", run_batch=holds.place_batch,
                                      run_one=holds.place_one, key=holds.hold_key,
                                      max_batch=settings.booking_batch_size)

    def on_event_applied(envelope: Envelope) -> None:
        if envelope.type in RULES_EVENTS:
            app.state.practice_rules.clear()
            app.state.embargoed_counts.clear()

    app = create_app(settings, title="booking-svc",
                     routers=[rotas_router, slots_router, holds_router, appointments_router, feed_router],
                     handlers=REGISTRY_HANDLERS, on_event_applied=on_event_applied, on_startup=[start])
    app.state.practice_rules = PracticeRules(settings.search_rules_seconds)
    app.state.embargoed_counts = EmbargoedCounts(settings.search_rules_seconds)
    app.state.clock = utcnow
    return app
