"""CPU per booking inside booking-svc, without the gateway or the network: bookings driven in-process through
the ASGI app on PostgreSQL (a scratch database) with a real nats-server.

    .venv/bin/python -m tests.booking_svc.bench_booking_cpu [--bookings 1200] [--profile]

Prints the process's CPU time per booking (the test client and the outbox relay included); `--profile` prints
cProfile's top functions by cumulative time instead. It asserts only that every booking got its 201."""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

from booking_svc.main import build_app

from callcentre.bench.localstack import create_databases_async, drop_databases_async, sqlalchemy_url
from tests.booking_svc.conftest import (START, TOMORROW, Booking, Clock, booking_settings, fast_nats_close, nhs,
                                        rota, session)
from tests.support.apps import AGENT, running_service
from tests.support.natsserver import NatsServer

ODS = "A81001"
WARM_UP = 50


async def run(bookings: int, profile: bool) -> None:
    dsn = (await create_databases_async(f"ccbench_{uuid.uuid4().hex[:8]}", ["cpu"]))["cpu"]
    with tempfile.TemporaryDirectory() as tmp:
        nats = NatsServer(Path(tmp) / "nats")
        nats.start()
        try:
            clock = Clock(START)
            async with running_service("booking_svc", build_app, booking_settings(sqlalchemy_url(dsn), nats.url)) as (
                    app, client):
                app.state.clock = clock
                booking = Booking(app=app, client=client, clock=clock, nats_url=nats.url)
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
                    r = await client.post("/api/v1/appointments", headers=AGENT, json={
                        "slot_id": slot_ids[n], "nhs_number": patients[n % len(patients)], "reason": "bench"})
                    assert r.status_code == 201, r.text

                for n in range(WARM_UP):
                    await book(n)
                profiler = cProfile.Profile() if profile else None
                began = time.process_time()
                if profiler:
                    profiler.enable()
                for n in range(WARM_UP, WARM_UP + bookings):
                    await book(n)
                if profiler:
                    profiler.disable()
                cpu = time.process_time() - began
                print(f"{bookings} bookings: {cpu / bookings * 1000:.2f} ms CPU per booking"
                      + (" (under cProfile)" if profiler else ""))
                if profiler:
                    pstats.Stats(profiler).sort_stats("cumulative").print_stats(50)
                await fast_nats_close(app)
        finally:
            nats.stop()
            await drop_databases_async([dsn])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bookings", type=int, default=1200)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    asyncio.run(run(args.bookings, args.profile))


if __name__ == "__main__":
    main()
