from __future__ import annotations

from datetime import date, datetime, time, timezone

from sqlalchemy.ext.asyncio import AsyncSession

from agent_desk_svc.agents import repository as agents_repository
from agent_desk_svc.agents.state import AGENT_STATES
from agent_desk_svc.callbacks import repository as callbacks_repository
from agent_desk_svc.calls import repository as calls_repository
from agent_desk_svc.dashboard import repository
from agent_desk_svc.dashboard.schemas import Dashboard
from services.timeutil import LONDON, utcnow


def london_day(at: datetime) -> date:
    return at.astimezone(LONDON).date()


def start_of_london_day(day: date) -> datetime:
    """The UTC instant a London day begins (23:00 or 00:00 UTC depending on summer time)."""
    return datetime.combine(day, time(0), tzinfo=LONDON).astimezone(timezone.utc)


async def dashboard(session: AsyncSession, now: datetime | None = None) -> Dashboard:
    now = now or utcnow()
    today = london_day(now)
    by_state = dict.fromkeys(AGENT_STATES, 0) | await agents_repository.count_by_state(session)
    calls_today, avg_handle = await calls_repository.figures_since(session, start_of_london_day(today))
    bookings = await repository.bookings_on(session, today)
    open_callbacks, overdue_callbacks = await callbacks_repository.outstanding_counts(session, now)
    return Dashboard(
        date=today,
        agents_by_state=by_state,
        calls_today=calls_today,
        avg_handle_seconds=avg_handle,
        bookings_today_by_practice={row.ods_code: row.booked for row in bookings if row.booked},
        cancellations_today_by_practice={row.ods_code: row.cancelled for row in bookings if row.cancelled},
        reschedules_today_by_practice={row.ods_code: row.rescheduled for row in bookings if row.rescheduled},
        open_callbacks=open_callbacks,
        overdue_callbacks=overdue_callbacks,
        free_slots_today_by_practice=await repository.free_slots_on(session, today),
    )
