"""Where a step's time goes: each process's own time per route during the measured window, read from its access
log (`ms`: from the request's arrival in the process to the last byte of its answer).

The gateway's time for a route includes the service's; the load generator's step latency includes both, plus
its own queue and the kernel's. So the differences say where a slow step waits: in the service (a group commit,
the database), in the gateway, or between the processes (CPU run queues on a busy machine)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from callcentre.bench.stats import latency_summary

# A route with fewer of the process's requests than this share is left out (sign-ins, the dashboard read).
MIN_SHARE = 0.01


def time_inside(logs: Path, start: datetime, end: datetime, *, min_share: float = MIN_SHARE) -> dict[str, Any]:
    """{process: {"METHOD route": latency summary}} of the access-log lines logged in [start, end), for every
    `<process>.log` in `logs` that has any."""
    out: dict[str, Any] = {}
    for path in sorted(logs.glob("*.log")):
        routes = _routes(path, start, end)
        total = sum(len(ms) for ms in routes.values())
        kept = {route: latency_summary([m / 1000 for m in ms]) for route, ms in routes.items()
                if len(ms) >= min_share * total}
        if kept:
            out[path.stem] = dict(sorted(kept.items(), key=lambda item: -item[1]["count"]))
    return out


def _routes(path: Path, start: datetime, end: datetime) -> dict[str, list[float]]:
    routes: dict[str, list[float]] = defaultdict(list)
    with path.open("rb") as lines:
        for line in lines:
            if b'"http.request"' not in line:  # most lines of a service's log are access lines; skip the rest cheaply
                continue
            try:
                entry = orjson.loads(line)
                at = datetime.fromisoformat(entry["timestamp"].replace("Z", "+00:00"))
                ms = float(entry["ms"])
                route = f"{entry['method']} {entry['route']}"
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                continue  # a line cut short by a restart, or another process's text
            if start <= at < end:
                routes[route].append(ms)
    return routes


def format_time_inside(inside: dict[str, Any]) -> list[str]:
    lines = ["  time inside each process (its access log: arrival -> answer sent)"]
    for process, routes in inside.items():
        for route, s in routes.items():
            lines.append(f"    {process:22s} {route:36s} {s['count']:>7d}  p50 {s['p50_ms']:>8} ms  "
                         f"p99 {s['p99_ms']:>8} ms")
    return lines
