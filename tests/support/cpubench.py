"""Timing for the in-process CPU benches (tests/*/bench_*_cpu.py): they print figures and assert nothing on time."""

from __future__ import annotations

import cProfile
import os
import pstats
import time
from collections.abc import Awaitable, Callable


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
