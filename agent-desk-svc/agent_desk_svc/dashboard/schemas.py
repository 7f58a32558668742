from __future__ import annotations

from datetime import date

from pydantic import BaseModel


class Dashboard(BaseModel):
    """Live figures for supervisors; "today" is the Europe/London date."""

    date: date
    agents_by_state: dict[str, int]
    calls_today: int
    avg_handle_seconds: float | None
    bookings_today_by_practice: dict[str, int]
    cancellations_today_by_practice: dict[str, int]
    reschedules_today_by_practice: dict[str, int]
    open_callbacks: int
    overdue_callbacks: int
    free_slots_today_by_practice: dict[str, int]
