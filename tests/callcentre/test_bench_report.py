"""The benchmark reports' arithmetic: percentiles, rates, ratios to the raw limits, CPU shares."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from callcentre.bench import cpu
from callcentre.bench.inside import format_time_inside, time_inside
from callcentre.bench.rush import Pacer, SlotPool, add_ratios, format_report
from callcentre.bench.stats import latency_summary, merge_counts, per_second, percentile, ratio


def test_percentile_is_the_nearest_rank():
    values = list(range(1, 101))  # 1..100
    random.Random(1).shuffle(values)
    assert percentile(values, 50) == 50
    assert percentile(values, 95) == 95
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile(values, 0) == 1
    assert percentile([7.0], 99) == 7.0
    assert percentile([1, 2, 3, 4], 50) == 2  # ceil(0.5 * 4) = 2nd smallest
    assert percentile([1, 2, 3, 4], 51) == 3
    assert percentile([], 50) is None
    with pytest.raises(ValueError):
        percentile([1], 101)


def test_one_slow_request_in_a_hundred_shows_at_p99_not_p95():
    seconds = [0.010] * 99 + [2.0]
    summary = latency_summary(seconds)
    assert summary["count"] == 100
    assert summary["p50_ms"] == 10.0
    assert summary["p95_ms"] == 10.0
    assert summary["p99_ms"] == 10.0  # nearest rank: the 99th of 100 is still fast
    assert summary["max_ms"] == 2000.0
    assert summary["mean_ms"] == pytest.approx((99 * 10 + 2000) / 100, abs=0.01)
    two_slow = latency_summary([0.010] * 98 + [2.0, 3.0])
    assert two_slow["p99_ms"] == 2000.0
    assert latency_summary([]) == {"count": 0, "mean_ms": None, "p50_ms": None, "p95_ms": None, "p99_ms": None,
                                   "max_ms": None}


def test_rates_and_ratios():
    assert per_second(900, 60) == 15.0
    assert per_second(1, 3) == 0.3
    assert per_second(5, 0) == 0.0
    assert ratio(450, 4500) == 0.1
    assert ratio(1, 3) == 0.333
    assert ratio(None, 10) is None
    assert ratio(10, None) is None
    assert ratio(10, 0) is None
    assert merge_counts([{"409": 2, "201": 5}, {"409": 1, "503": 4}]) == {"201": 5, "409": 3, "503": 4}


def test_the_rush_report_divides_ours_by_the_raw_limits():
    report = {"bookings_per_s": 250.0, "requests_per_s": 1500.0, "measured_s": 10.0,
              "steps": {"search": {"count": 3000}}}
    limits = {"seconds_each": 4, "cores": 2, "booking_sql": {"per_s": 5000.0}, "minimal_booking_endpoint":
              {"per_s": 1250.0}, "jetstream_publish": {"per_s": 25000.0}, "bare_endpoint": {"per_s": 6000.0},
              "slot_query_sql": {"per_s": 6000.0}}
    add_ratios(report, limits)
    assert report["ratio_to_raw"] == {
        "bookings_vs_booking_sql": 0.05,
        "bookings_vs_minimal_booking_endpoint": 0.2,
        "booked_events_vs_jetstream_publish": 0.01,
        "requests_vs_bare_endpoint": 0.25,
        "searches_vs_slot_query_sql": 0.05,  # 3000 searches in 10 s = 300/s
    }
    assert report["raw"]["booking_sql"] == 5000.0
    unmeasured = {"bookings_per_s": 1.0, "requests_per_s": 1.0, "measured_s": 1.0, "steps": {}}
    add_ratios(unmeasured, None)
    assert unmeasured["ratio_to_raw"] is None


def test_the_printed_report_names_every_figure_the_issue_asks_for():
    report = {"mode": "book", "agents": 2, "contention_agents": 1, "hot_practices": ["R10001"], "practices": 3,
              "measured_s": 10.0, "warmup_s": 1.0, "bookings": 20, "bookings_per_s": 2.0, "bookings_total": 22,
              "completed_calls": None, "requests": 25, "requests_per_s": 2.5,
              "steps": {"book": {"count": 25, "p50_ms": 5.0, "p95_ms": 9.0, "p99_ms": 12.0, "max_ms": 15.0}},
              "statuses": {"book": {"201": 22, "409": 3}}, "errors": {"409": 3}, "double_bookings": 0,
              "booked_slots_without_appointment": 0, "appointments_on_unbooked_slots": 0,
              "acknowledged_bookings_stored": 22, "acknowledged_bookings_missing": 0, "events_created": 22,
              "events_published": 22, "events_applied": 22, "dashboard_bookings_counted": 22, "drained": True,
              "drain_wait_seconds": 0.5, "event_lag_p50_ms": 40.0, "event_lag_p95_ms": 80.0,
              "event_lag_p99_ms": 90.0, "event_lag_max_ms": 95.0, "ratio_to_raw": {"bookings_vs_booking_sql": 0.01},
              "cpu_cores": {"booking-svc": 0.5}, "cpu_ms_per_booking": {"booking-svc": 2.5},
              "load_average_before": [1.0, 1.0, 1.0], "load_average_after": [1.0, 1.0, 1.0]}
    text = format_report(report)
    for needle in ("2.0/s", "p99", "12.0", "double bookings     0", "published 22", "applied by agent-desk 22",
                   "p99 90.0 ms", "bookings_vs_booking_sql 0.01", "{'409': 3}", "booking-svc 2.5"):
        assert needle in text, needle


def test_cpu_shares_are_cores_over_the_interval():
    before = {"booking-svc": 10.0, "postgres": 4.0, "gateway": 1.0}
    after = {"booking-svc": 15.0, "postgres": 5.0, "gateway": 0.5, "nats": 2.0}  # gateway restarted: counts from 0
    assert cpu.cores_used(before, after, 10.0) == {"booking-svc": 0.5, "postgres": 0.1, "gateway": 0.0, "nats": 0.2}
    assert cpu.cores_used(before, after, 0) == {}
    here = cpu.snapshot({})
    assert here["load generator"] > 0  # this test process has used some CPU


def test_slot_pool_gives_calm_agents_distinct_slots_and_hot_agents_the_same_few():
    pool = SlotPool({"A": ["a1", "a2", "a3"], "H": [f"h{i}" for i in range(10)]}, random.Random(3))
    assert [pool.take("A") for _ in range(4)] == ["a1", "a2", "a3", None]  # earliest first, never twice
    picks = {pool.contend("H") for _ in range(50)}
    assert picks <= {"h0", "h1", "h2", "h3"}  # racing for the first few still open
    pool.settle("H", "h0")
    assert "h0" not in {pool.contend("H") for _ in range(50)}
    assert pool.take("missing") is None


async def test_the_open_loop_schedule_does_not_wait_for_the_stack():
    """Arrivals are due at fixed intervals whatever happens to earlier requests; an agent that frees up late is
    handed a time already past, so the wait shows in that request's latency (no coordinated omission)."""
    pacer = Pacer(rate=1000.0)
    dues = [await pacer.due() for _ in range(5)]
    assert [round(b - a, 9) for a, b in zip(dues, dues[1:])] == [0.001] * 4
    pacer.next -= 10.0  # the stack fell ten seconds behind
    late = await pacer.due()
    assert late == pytest.approx(dues[-1] + 0.001 - 10.0)
    assert (await pacer.due()) - late == pytest.approx(0.001)


async def test_a_stack_that_fails_to_start_shows_its_logs_before_they_are_removed(monkeypatch, tmp_path):
    """The rush's stack lives in a temporary folder that is removed on the way out: the "see <log>" of a
    start-up failure would name a file that no longer exists, so the logs' last lines are shown first."""
    from rich.console import Console

    from callcentre.bench import runner

    def failing_start(stack) -> None:  # noqa: ANN001 - a PostgresStack
        logs = stack.data_dir / "logs"
        logs.mkdir(parents=True)
        (logs / "booking-svc.log").write_text("".join(f"line {n}\n" for n in range(50)) + "[boom] port taken\n")
        raise SystemExit(f"booking-svc exited during start-up; see {logs / 'booking-svc.log'}")

    monkeypatch.setattr(runner.PostgresStack, "start", failing_start)
    console = Console(record=True, width=200)
    with pytest.raises(SystemExit):
        await runner.rush(url=None, data_dir=None, booking_db=None, desk_db=None, mode="book", agents=1,
                          contention_agents=0, hot_practices=1, duration=1, warmup=0, practices=1,
                          patients_per_practice=1, clinicians=1, with_limits=False, limits_seconds=1,
                          service_workers=1, drain_timeout=1, json_path=None, console=console)
    shown = console.export_text()
    assert "last 30 lines of booking-svc.log" in shown
    assert "[boom] port taken" in shown  # as written: not taken for console markup
    assert "line 49" in shown and "line 20\n" not in shown


def test_time_inside_reads_each_process_access_lines_of_the_measured_window(tmp_path: Path):
    start = datetime(2026, 12, 7, 8, 0, tzinfo=timezone.utc)

    def line(at_seconds: float, method: str, route: str, ms: float) -> str:
        at = (start + timedelta(seconds=at_seconds)).isoformat().replace("+00:00", "Z")
        return json.dumps({"method": method, "route": route, "status": 201, "ms": ms, "event": "http.request",
                           "timestamp": at})

    (tmp_path / "booking-svc.log").write_text("\n".join([
        line(-1, "POST", "/api/v1/holds", 900.0),  # before the window: warm-up
        *(line(1 + n / 100, "POST", "/api/v1/holds", float(n + 1)) for n in range(100)),
        line(2, "GET", "/api/v1/slots", 5.0),  # 1 request in 102: under the 1% share, left out
        json.dumps({"event": "service.started", "timestamp": start.isoformat()}),
        '{"method": "POST", "route": "/api/v1/ho',  # cut short by a kill
        line(10, "POST", "/api/v1/holds", 900.0),  # after the window
    ]) + "\n")
    (tmp_path / "gateway.log").write_text(line(1, "POST", "/api/v1/holds/**", 120.0) + "\n")
    (tmp_path / "nats.log").write_text("[1] [INF] Server is ready\n")

    inside = time_inside(tmp_path, start, start + timedelta(seconds=5))
    assert set(inside) == {"booking-svc", "gateway"}
    holds = inside["booking-svc"]["POST /api/v1/holds"]
    assert holds["count"] == 100 and holds["p50_ms"] == 50.0 and holds["p99_ms"] == 99.0 and holds["max_ms"] == 100.0
    assert list(inside["booking-svc"]) == ["POST /api/v1/holds"]
    assert inside["gateway"]["POST /api/v1/holds/**"]["p50_ms"] == 120.0
    printed = "\n".join(format_time_inside(inside))
    assert "booking-svc" in printed and "POST /api/v1/holds/**" in printed
