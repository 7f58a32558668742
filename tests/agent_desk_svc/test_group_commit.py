"""Call starts and wrap-ups that arrive together are committed together on PostgreSQL (services.groupcommit): a
mixed burst gets exactly what one at a time gives, refusals included. SQLite (one at a time) and PostgreSQL."""

from __future__ import annotations

import asyncio

import httpx
from sqlalchemy import select

from agent_desk_svc.calls.models import Call
from tests.agent_desk_svc.conftest import Desk, staff
from tests.agent_desk_svc.test_calls import state_of
from tests.support.apps import wait_until
from tests.support.groupcommit import batch_sizes, fallbacks

SUE = staff("sue", "supervisor")


def answer(r: httpx.Response) -> tuple[int, str | None]:
    return r.status_code, (r.json().get("code") if r.status_code >= 400 else None)


async def test_a_burst_of_pick_ups_and_wrap_ups_gets_what_one_at_a_time_gives(desk: Desk) -> None:
    names = [f"agent{n}" for n in range(8)]
    for name in [*names, "onbreak", "busy"]:
        await desk.create_agent(name)
    for name in [*names, "busy"]:
        await desk.client.put(f"/api/v1/agents/{name}/state", headers=staff(name), json={"state": "available"})
    await desk.client.put("/api/v1/agents/onbreak/state", headers=staff("onbreak"), json={"state": "break"})
    busy = (await desk.client.post("/api/v1/calls", headers=staff("busy"), json={})).json()
    batching = desk.app.state.db.dialect == "postgresql"
    starts, closes = batch_sizes(desk.app.state.call_starts), batch_sizes(desk.app.state.call_closes)
    fallen_back = {n: fallbacks(n) for n in ("call_starts", "call_closes")}

    picked = await asyncio.gather(
        *(desk.client.post("/api/v1/calls", headers=staff(name), json={"practice": "a81001"}) for name in names),
        desk.client.post("/api/v1/calls", headers=staff("agent0"), json={}),  # agent0 twice at once: one wins
        desk.client.post("/api/v1/calls", headers=staff("onbreak"), json={}),
        desk.client.post("/api/v1/calls", headers=staff("busy"), json={}),
        desk.client.post("/api/v1/calls", headers=staff("nobody"), json={}))
    assert [answer(r) for r in picked[1:8]] == [(201, None)] * 7
    assert sorted([answer(picked[0]), answer(picked[8])]) == [(201, None), (409, "call_already_open")]
    assert [answer(r) for r in picked[9:]] == [(409, "agent_not_available"), (409, "call_already_open"),
                                              (404, "agent_not_found")]
    calls = {r.json()["agent"]: r.json() for r in picked if r.status_code == 201}
    # agent0's two pick-ups race: either may win, and only the first names a practice.
    practice = {name: "A81001" for name in names} | {"agent0": "A81001" if picked[0].status_code == 201 else None}
    assert sorted(calls) == names and all(c["open"] and c["practice"] == practice[a] for a, c in calls.items())
    assert [await state_of(desk, name) for name in names] == ["on_call"] * 8
    assert await state_of(desk, "onbreak") == "break"

    closed = await asyncio.gather(
        *(desk.client.patch(f"/api/v1/calls/{calls[name]['id']}", headers=staff(name),
                            json={"disposition": "booked", "nhs_number": "9434765919"}) for name in names[:6]),
        desk.client.patch(f"/api/v1/calls/{calls['agent6']['id']}", headers=SUE,  # a supervisor closes it
                          json={"disposition": "abandoned"}),
        desk.client.patch(f"/api/v1/calls/{calls['agent7']['id']}", headers=staff("agent0"),  # not theirs
                          json={"disposition": "abandoned"}),
        desk.client.patch(f"/api/v1/calls/{calls['agent1']['id']}", headers=staff("agent1"),  # twice at once
                          json={"disposition": "booked"}),
        desk.client.patch("/api/v1/calls/no-such-call", headers=staff("agent2"), json={"disposition": "booked"}),
        desk.client.patch(f"/api/v1/calls/{busy['id']}", headers=staff("busy"), json={"disposition": "advice_given"}))
    # agent1's call closed twice at once: whichever comes first closes it, the other is told it is closed.
    pair = [closed[1], closed[8]]
    assert sorted(answer(r) for r in pair) == [(200, None), (409, "call_closed")]
    others = [closed[i] for i in (0, 2, 3, 4, 5, 6)]
    assert [answer(r) for r in others] == [(200, None)] * 6
    assert [answer(r) for r in (closed[7], closed[9], closed[10])] == [(403, "not_your_call"),
                                                                      (404, "call_not_found"), (200, None)]
    for r in [*others, *(r for r in pair if r.status_code == 200)]:
        assert r.json()["open"] is False and r.json()["handle_seconds"] >= 0
    assert closed[0].json()["nhs_number"] == "9434765919" and closed[6].json()["disposition"] == "abandoned"
    assert [await state_of(desk, name) for name in names] == ["wrap_up"] * 7 + ["on_call"]
    async with desk.app.state.db.session() as session:
        stored = {c.agent: c for c in (await session.execute(select(Call))).scalars()}
    assert stored["agent6"].closed_by == "sue" and stored["agent7"].closed_at is None
    assert stored["agent0"].disposition == "booked" and stored["agent0"].nhs_number == "9434765919"

    # Each change announced once: the dashboard counts today's calls and agents by state from the same events.
    async def counted() -> bool:
        figures = (await desk.client.get("/api/v1/dashboard", headers=SUE)).json()
        return (figures["calls_today"] == 9 and figures["agents_by_state"]["wrap_up"] == 8
                and figures["agents_by_state"]["on_call"] == 1)

    assert await wait_until(counted)
    assert {n: fallbacks(n) for n in fallen_back} == fallen_back
    if batching:
        assert max(starts) > 1 and max(closes) > 1, (starts, closes)
    else:
        assert starts == closes == []
