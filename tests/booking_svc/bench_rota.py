"""The big rota: 8 weeks x 10 clinicians x 30 slots a weekday (12,000 slots) in one PUT, on SQLite and PostgreSQL.

    .venv/bin/python -m tests.booking_svc.bench_rota [--repeat 3]

Prints wall-clock figures (first PUT, the same PUT again, a PUT that moves one week, a slot search); it asserts
only correctness, never speed. test_rota_scale.py runs the same once per dialect."""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from booking_svc.main import build_app

from services.contracts.registry import Clinician
from tests.booking_svc.conftest import CLINICIANS, START, TOMORROW, Booking, Clock, booking_settings, rota, session
from tests.support.apps import AGENT, running_service

ODS = "B82001"
DAYS = 56
BIG_CLINICIANS = [Clinician(clinician_id=f"D{n}", name=f"Dr {n}", role="gp") for n in range(10)]


def big_rota(shift_week: int | None = None) -> dict:
    """10 clinicians, 08:00-13:00 in 10-minute slots, every weekday for 8 weeks; optionally one week moved to the
    afternoon (14:00-19:00)."""
    sessions = []
    for offset in range(DAYS):
        day = TOMORROW + timedelta(days=offset)
        if day.weekday() >= 5:
            continue
        late = shift_week is not None and offset // 7 == shift_week
        for clinician in BIG_CLINICIANS:
            sessions.append(session(f"{day}-{clinician.clinician_id}", day, "14:00" if late else "08:00",
                                    "19:00" if late else "13:00", clinician=clinician.clinician_id))
    return rota(sessions, days=DAYS)


async def measure(booking: Booking) -> dict[str, float]:
    await booking.seed_practice(ODS, clinicians=[*CLINICIANS, *BIG_CLINICIANS])
    timings = {}
    body = big_rota()
    started = time.perf_counter()
    first = await booking.put_rota(ODS, body)
    timings["first PUT (12,000 created)"] = time.perf_counter() - started
    assert first.status_code == 200, first.text[:500]
    assert first.json() == {"created": 12000, "removed": 0, "unchanged": 0, "displaced": 0}

    started = time.perf_counter()
    again = await booking.put_rota(ODS, body)
    timings["same PUT again (12,000 unchanged)"] = time.perf_counter() - started
    assert again.json() == {"created": 0, "removed": 0, "unchanged": 12000, "displaced": 0}

    started = time.perf_counter()
    moved = await booking.put_rota(ODS, big_rota(shift_week=3))
    timings["PUT moving one week (1,500 out, 1,500 in)"] = time.perf_counter() - started
    assert moved.json() == {"created": 1500, "removed": 1500, "unchanged": 10500, "displaced": 0}

    started = time.perf_counter()
    found = await booking.client.get("/api/v1/slots", params={"practice": ODS, "limit": 50}, headers=AGENT)
    timings["slot search, first 50 of 12,000"] = time.perf_counter() - started
    assert found.status_code == 200 and len(found.json()["items"]) == 50
    return timings


async def run_once(kind: str, workdir: Path, nats_url: str, run: int) -> dict[str, float]:
    from tests.support.databases import create_database, drop_database

    url = create_database(kind, f"bench{run}", workdir)
    try:
        clock = Clock(START)
        async with running_service("booking_svc", build_app, booking_settings(url, nats_url)) as (app, client):
            app.state.clock = clock
            return await measure(Booking(app=app, client=client, clock=clock, nats_url=nats_url))
    finally:
        drop_database(url)


async def main(repeat: int) -> None:
    from tests.support.natsserver import NatsServer

    with tempfile.TemporaryDirectory() as tmp:
        nats = NatsServer(Path(tmp) / "nats")
        nats.start()
        try:
            for kind in ("sqlite", "postgresql"):
                runs = [await run_once(kind, Path(tmp), nats.url, run) for run in range(repeat)]
                print(f"\n{kind} (median of {repeat}):")
                for name in runs[0]:
                    print(f"  {name:45s} {statistics.median(r[name] for r in runs) * 1000:8.0f} ms")
        finally:
            nats.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    asyncio.run(main(parser.parse_args().repeat))
