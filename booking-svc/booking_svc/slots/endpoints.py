from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Query, Request, Response

from booking_svc.dependencies import Now
from booking_svc.slots import service
from booking_svc.slots.schemas import SlotPage
from services.app import DbSession, json_response, service_router
from services.auth import StaffOrPractice
from services.pagination import Limit, clamp_limit

router = service_router(prefix="/api/v1/slots", tags=["slots"])


@router.get("", response_model=SlotPage)
async def search_slots(
    request: Request,
    session: DbSession,
    principal: StaffOrPractice,
    now: Now,
    practice: Annotated[list[str], Query(max_length=50)] = [],  # noqa: B006 - FastAPI copies defaults
    from_: Annotated[str | None, Query(alias="from", max_length=40)] = None,
    to: Annotated[str | None, Query(max_length=40)] = None,
    slot_type: Annotated[str | None, Query(max_length=50)] = None,
    role: Annotated[str | None, Query(max_length=64)] = None,
    gender: Annotated[str | None, Query(max_length=32)] = None,
    channel: Literal["in_person", "telephone", "video", "home_visit"] | None = None,
    include: Annotated[list[str], Query(max_length=32)] = [],  # noqa: B006
    limit: Limit = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    """Slots the centre may book now, earliest first: free (or with an expired hold), bookable by the centre,
    inside each slot type's notice and days-ahead window, released, at an active practice. `include=pcn` adds
    PCN partners' slots shared with the PCN. `embargoed` says how many matching slots are not released yet and
    when the earliest is. `from`/`to`: London dates (a `to` date includes that day) or ISO date-times."""
    query = service.SlotQuery(
        practices=[code for value in practice for code in value.split(",")],
        start=service.parse_time_bound(from_, name="from"), end=service.parse_time_bound(to, name="to", end=True),
        slot_type=slot_type, role=role, gender=gender, channel=channel,
        include_pcn="pcn" in {part.strip().lower() for value in include for part in value.split(",")},
        limit=clamp_limit(limit, default=request.app.state.settings.slot_search_default_limit), cursor=cursor)
    state = request.app.state
    return json_response(await service.search(session, principal, query, now, state.practice_rules,
                                              state.embargoed_counts))
