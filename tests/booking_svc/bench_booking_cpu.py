"""CPU per booking inside booking-svc, without the gateway or the network: bookings driven in-process through
the ASGI app on PostgreSQL (a scratch database) with a real nats-server.

    .venv/bin/python -m tests.booking_svc.bench_booking_cpu [--bookings 1200] [--profile]

Prints the process's CPU time per booking (the test client and the outbox relay included); with `--profile`,
under cProfile, and its top functions by own time. It asserts only that every booking got its 201."""

from __future__ import annotations

import argparse
import asyncio
from datetime import timedelta

from tests.booking_svc.conftest import TOMORROW, nhs, rota, scratch_booking, session
from tests.support.apps import AGENT
from tests.support.cpubench import measure

ODS = "A81001"
WARM_UP = 50


async def run(bookings: int, profile: bool) -> None:
    async with scratch_booking() as booking:
        patients = [nhs(i) for i in range(50)]
        await booking.seed_practice(ODS, patients=patients)
        days = (bookings + WARM_UP) // 180 + 1  # 3 clinicians x 60 ten-minute slots a day
        sessions = [session(f"{c}-{d}", TOMORROW + timedelta(days=d), "08:00", "18:00", clinician=c)
                    for c in ("C1", "C2", "N1") for d in range(days)]
        response = await booking.put_rota(ODS, rota(sessions, days=days))
        assert response.status_code == 200, response.text
        window = {"from": TOMORROW.isoformat(), "to": (TOMORROW + timedelta(days=days)).isoformat()}
        slot_ids = [s["id"] for s in await booking.slots(AGENT, practice=ODS, **window)]

        async def book(n: int) -> None:
            r = await booking.client.post("/api/v1/appointments", headers=AGENT, json={
                "slot_id": slot_ids[n], "nhs_number": patients[n % len(patients)], "reason": "bench"})
            assert r.status_code == 201, r.text

        for n in range(WARM_UP):
            await book(n)
        await measure(book, range(WARM_UP, WARM_UP + bookings), unit="booking", profile=profile)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bookings", type=int, default=1200)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    asyncio.run(run(args.bookings, args.profile))


if __name__ == "__main__":
    main()
