"""`callcentre bench limits` and `callcentre bench rush` run as an operator would run them (a fresh PostgreSQL
scratch database, their own nats-server and stack), briefly. They assert that figures come out and that the
rush's correctness checks hold, never how fast anything was."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

CLI = [sys.executable, "-m", "callcentre.cli", "bench"]


def test_bench_limits_measures_every_raw_ceiling(tmp_path: Path) -> None:
    out = tmp_path / "limits.json"
    run = subprocess.run([*CLI, "limits", "--seconds", "0.5", "--json", str(out)], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    report = json.loads(out.read_text())
    for name in ("booking_sql", "booking_sql_asyncpg", "slot_query_sql", "jetstream_publish", "bare_endpoint",
                 "minimal_booking_endpoint"):
        assert report[name]["per_s"] > 0, (name, report[name])
    assert "Raw limits on this machine" in run.stdout


def test_bench_rush_books_through_the_gateway_and_checks_nothing_was_lost(tmp_path: Path) -> None:
    out = tmp_path / "rush.json"
    run = subprocess.run([*CLI, "rush", "--mode", "flow", "--agents", "4", "--contention-agents", "2",
                          "--hot-practices", "1", "--practices", "3", "--patients-per-practice", "20",
                          "--clinicians", "2", "--duration", "4", "--warmup", "1", "--no-limits",
                          "--drain-timeout", "60", "--rate", "4", "--json", str(out)],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["offered_rate_per_s"] == 4.0 and "open loop, 4.0/s offered" in run.stdout
    assert report["bookings_total"] > 0
    assert report["completed_calls"] is not None
    assert {"search", "hold", "book"} <= set(report["steps"])
    for step in ("search", "hold", "book"):
        assert report["steps"][step]["p99_ms"] is not None
    assert report["double_bookings"] == 0
    assert report["acknowledged_bookings_missing"] == 0
    assert report["drained"] is True
    assert report["events_published"] == report["events_applied"] == report["events_created"]
    assert report["event_lag_p99_ms"] is not None
    # Each process's own time per route, from its access log over the measured window.
    inside = report["time_inside"]
    assert inside["gateway"]["POST /api/v1/appointments/**"]["count"] > 0
    assert inside["booking-svc"]["POST /api/v1/appointments"]["count"] > 0
    assert inside["agent-desk-svc"]["PATCH /api/v1/calls/{call_id}"]["count"] > 0
    assert "time inside each process" in run.stdout


@pytest.mark.parametrize("upstream", ["service", "bare"])
def test_bench_gateway_measures_direct_and_through_the_gateway(upstream: str) -> None:
    run = subprocess.run([sys.executable, "-m", "callcentre.bench_gateway", "--duration", "1", "--rounds", "1",
                          "--concurrency", "4", "--upstream", upstream, "--json"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    report = json.loads(run.stdout)
    for target in ("direct", "gateway"):
        figures = report[target]
        assert figures["requests_per_second"] > 0 and figures["failed"] == 0, (target, figures)
        assert set(figures["statuses"]) == {"200"}, (target, figures)
        assert figures["gateway_cpu_us_per_request"] >= 0 and figures["upstream_cpu_us_per_request"] > 0
    assert report["gateway_to_direct"] > 0


def test_bench_rush_search_mode_runs_only_the_agents_asked_for(tmp_path: Path) -> None:
    # A search has nothing to contend for: left to its default, the contention group would only add agents, and a
    # figure "at 50 agents" would be one at 70.
    out = tmp_path / "rush.json"
    run = subprocess.run([*CLI, "rush", "--mode", "search", "--agents", "3", "--practices", "3",
                          "--patients-per-practice", "20", "--clinicians", "2", "--duration", "2", "--warmup", "0.5",
                          "--no-limits", "--json", str(out)],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["mode"] == "search" and report["agents"] == 3 and report["contention_agents"] == 0
    assert report["steps"]["search_wide"]["count"] > 0
    assert set(report["statuses"]["search_wide"]) == {"200"} and report["errors"] == {}
    assert "3 agents + 0 contending" in run.stdout
