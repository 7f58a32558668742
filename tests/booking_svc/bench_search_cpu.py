"""CPU per 20-practice, 14-day slot search (first page of 50) inside booking-svc, without the gateway or the
network: searches driven in-process through the ASGI app on PostgreSQL (a scratch database) with a real
nats-server. The search `callcentre bench rush --mode search` makes, on the same shape of region.

    .venv/bin/python -m tests.booking_svc.bench_search_cpu [--searches 1000] [--profile] [--stale-statistics]

Prints the process's CPU time per search (the test client included) and the time each search took; with
`--profile`, under cProfile, and its top functions by own time. It asserts only that every search answered 200
with a full page."""

from __future__ import annotations

import argparse
import asyncio
import random
from datetime import timedelta

from sqlalchemy import text

from tests.booking_svc.conftest import TOMORROW, rota, scratch_booking, session
from tests.support.apps import AGENT
from tests.support.cpubench import measure

PRACTICES = [f"R{10001 + n}" for n in range(40)]
WARM_UP = 30


async def run(searches: int, profile: bool, stale: bool) -> None:
    async with scratch_booking() as booking:
        app, client = booking.app, booking.client
        for ods in PRACTICES:
            await booking.seed_practice(ods, pcn=f"PCN-{ods[-1]}")
            sessions = [session(f"{c}-{d}", TOMORROW + timedelta(days=d), "08:00", "18:00", clinician=c)
                        for c in ("C1", "C2", "N1") for d in range(14)]
            response = await booking.put_rota(ods, rota(sessions, days=14))
            assert response.status_code == 200, response.text
        if not stale:
            async with app.state.db.transaction() as db_session:  # as autovacuum would after the seeding
                await db_session.execute(text("ANALYZE"))
        for _ in range(600):  # the relay has the seeding's events to publish: not part of a search's cost
            async with app.state.db.session() as db_session:
                pending = (await db_session.execute(text(
                    "SELECT count(*) FROM outbox WHERE published_at IS NULL"))).scalar_one()
            if not pending:
                break
            await asyncio.sleep(0.1)
        window = {"from": TOMORROW.isoformat(), "to": (TOMORROW + timedelta(days=13)).isoformat()}
        rng = random.Random(8)

        async def search(_n: int) -> None:
            r = await client.get("/api/v1/slots", headers=AGENT, params={
                "practice": rng.sample(PRACTICES, 20), **window, "limit": 50})
            assert r.status_code == 200 and len(r.json()["items"]) == 50, r.text

        for n in range(WARM_UP):
            await search(n)
        await measure(search, range(searches), unit="search", profile=profile)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--searches", type=int, default=1000)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--stale-statistics", action="store_true",
                        help="Skip the ANALYZE after seeding: the planner has no statistics for the new slots")
    args = parser.parse_args()
    asyncio.run(run(args.searches, args.profile, args.stale_statistics))


if __name__ == "__main__":
    main()
