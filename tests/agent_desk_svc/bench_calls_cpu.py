"""CPU per call inside agent-desk-svc, without the gateway or the network: calls started and wrapped up in-process
through the ASGI app on PostgreSQL (a scratch database) with a real nats-server, as the rush's flow makes them.

    .venv/bin/python -m tests.agent_desk_svc.bench_calls_cpu [--calls 1000] [--profile]

Prints the process's CPU time per call (start and wrap-up, the test client and the outbox relay included); with
`--profile`, under cProfile, and its top functions by own time. It asserts only that every start answered 201
and every wrap-up 200."""

from __future__ import annotations

import argparse
import asyncio
import uuid

from tests.agent_desk_svc.conftest import desk_settings, staff, started_desk
from tests.support.cpubench import measure, scratch_postgres_and_nats

AGENTS = 20
WARM_UP = 40


async def run(calls: int, profile: bool) -> None:
    async with scratch_postgres_and_nats() as (database_url, nats_url):
        async with started_desk(desk_settings(database_url, nats_url)) as desk:
            agents = [f"bench-agent-{n}" for n in range(AGENTS)]
            for username in agents:
                await desk.create_agent(username)
                r = await desk.client.put(f"/api/v1/agents/{username}/state", headers=staff(username),
                                          json={"state": "available"})
                assert r.status_code == 200, r.text

            async def call(n: int) -> None:
                headers = staff(agents[n % AGENTS])
                r = await desk.client.post("/api/v1/calls", headers=headers, json={})
                assert r.status_code == 201, r.text
                r = await desk.client.patch(f"/api/v1/calls/{r.json()['id']}", headers=headers, json={
                    "disposition": "booked", "nhs_number": "9434765919", "practice": "A81001",
                    "appointment_id": uuid.uuid4().hex})
                assert r.status_code == 200, r.text

            for n in range(WARM_UP):
                await call(n)
            await measure(call, range(WARM_UP, WARM_UP + calls), unit="call", profile=profile)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    asyncio.run(run(args.calls, args.profile))


if __name__ == "__main__":
    main()
