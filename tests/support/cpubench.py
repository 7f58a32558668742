"""Timing for the in-process CPU benches (tests/*/bench_*_cpu.py): they print figures and assert nothing on time."""

from __future__ import annotations

import cProfile
import os
import pstats
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path


@asynccontextmanager
async def scratch_postgres_and_nats() -> AsyncIterator[tuple[str, str]]:
    """(database URL, NATS URL): a scratch PostgreSQL database and a nats-server of the bench's own, both gone
    afterwards."""
    from callcentre.bench.localstack import create_databases_async, drop_databases_async, sqlalchemy_url
    from tests.support.natsserver import NatsServer

    dsn = (await create_databases_async(f"ccbench_{uuid.uuid4().hex[:8]}", ["cpu"]))["cpu"]
    with tempfile.TemporaryDirectory() as tmp:
        nats = NatsServer(Path(tmp) / "nats")
        nats.start()
        try:
            yield sqlalchemy_url(dsn), nats.url
        finally:
            nats.stop()
            await drop_databases_async([dsn])


async def measure(step: Callable[[int], Awaitable[None]], numbers: range, *, unit: str, profile: bool) -> None:
    """Await `step(n)` for each n in turn and print this process's CPU time and the time from start to answer per
    step (one at a time); with `profile`, under cProfile, whose top functions by own time follow."""
    profiler = cProfile.Profile() if profile else None
    began, wall = time.process_time(), time.perf_counter()
    if profiler:
        profiler.enable()
    for n in numbers:
        await step(n)
    if profiler:
        profiler.disable()
    cpu, wall = time.process_time() - began, time.perf_counter() - wall
    print(f"{unit}: {len(numbers)} one at a time, {cpu / len(numbers) * 1000:.2f} ms CPU each, "
          f"{wall / len(numbers) * 1000:.2f} ms each from start to answer" + (" (under cProfile)" if profiler else ""))
    if profiler:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(40)
        if os.environ.get("CPUBENCH_CALLERS"):
            pstats.Stats(profiler).print_callers(os.environ["CPUBENCH_CALLERS"])
