"""`callcentre bench rush`: a region's Monday 8am through the gateway.

Virtual agents each loop over whole calls: pick up (POST /calls), identify the patient (GET /patients), search
their practice's next 14 days (GET /slots), hold a slot (POST /holds), book it (POST /appointments) and wrap up
(PATCH /calls/{id}). A second group hammers the same few practices, taking from the first few slots offered, so
holds and bookings really race. `--mode book` sends only the bookings (slot ids fetched beforehand).

By default the agents run a closed loop: each starts its next call as soon as the last one ends, so the run
finds the stack's ceiling, and latencies there are mostly queueing. `--rate R` runs an open loop instead: calls
(or bookings, or searches) arrive R a second on a fixed schedule, whichever agent is free takes the next one, and
the first step's latency counts from when it was due, so a stack that falls behind shows it in the figures
rather than slowing the load down (no coordinated omission).

Afterwards the databases are checked (no slot booked twice, every 201 stored) and the booked events are
followed from booking-svc's outbox to agent-desk-svc's inbox (published = applied, and the lag). Samples of the
first `warmup` seconds are left out of the figures but not out of the checks."""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

from callcentre.bench import cpu
from callcentre.bench.checks import RunChecks
from callcentre.bench.client import HttpClient, Response
from callcentre.bench.inside import format_time_inside
from callcentre.bench.region import Region
from callcentre.bench.stats import latency_summary, per_second, ratio

STEPS = ("call_start", "identify", "search", "hold", "book", "wrap_up", "search_wide")
WIDE_SEARCH_PRACTICES = 20
SEARCH_LIMIT = 20
HOT_SEARCH_LIMIT = 5
HOLD_ATTEMPTS = 3


@dataclass
class RushConfig:
    url: str
    jwt_secret: str
    mode: str = "flow"  # flow | book
    agents: int = 200
    contention_agents: int = 20
    hot_practices: int = 3
    duration: float = 60.0
    warmup: float = 5.0
    request_timeout: float = 15.0
    drain_timeout: float = 120.0
    keep_timeline: bool = False
    rate: float | None = None  # arrivals a second (open loop); None: closed loop


@dataclass
class Recorder:
    measure_from: float = 0.0
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    bookings: int = 0  # 201s to POST /appointments that began after the warm-up
    bookings_total: int = 0  # every 201, warm-up included
    completed_calls: int = 0  # calls wrapped up with a booking, after the warm-up
    requests: int = 0
    booked_ids: list[str] = field(default_factory=list)
    booked_by_practice: Counter = field(default_factory=Counter)
    slots_exhausted: int = 0
    last_done: float = 0.0
    # (began, step, status, seconds, content type) of every request, when a drill wants to look back.
    timeline: list[tuple[float, str, int, float, str]] | None = None

    def record(self, step: str, began: float, response: Response) -> None:
        now = time.perf_counter()
        self.last_done = now
        if self.timeline is not None:
            self.timeline.append((began, step, response.status, now - began, response.content_type))
        if began >= self.measure_from:
            self.latencies[step].append(now - began)
            self.statuses[step][response.status] += 1
            self.requests += 1

    def booked(self, began: float, appointment: dict[str, Any]) -> None:
        self.bookings_total += 1
        self.booked_ids.append(appointment["id"])
        self.booked_by_practice[appointment["practice"]] += 1
        if began >= self.measure_from:
            self.bookings += 1


class Clock:
    def __init__(self, warmup: float, duration: float) -> None:
        self.started = time.perf_counter()
        self.measure_from = self.started + warmup
        self.deadline = self.measure_from + duration

    def running(self) -> bool:
        return time.perf_counter() < self.deadline


class Pacer:
    """Open-loop arrivals at a fixed rate. `due()` hands out the next arrival's time, waiting until then; an
    agent that frees up late gets a time already past, and the request's latency counts from it."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate
        self.next = time.perf_counter()

    async def due(self) -> float:
        due, self.next = self.next, self.next + self.interval
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        return due


async def _next_start(clock: Clock, pacer: Pacer | None) -> float | None:
    """When the agent's next call (or request) began: its due time in an open loop, now in a closed one; None
    once the run is over."""
    began = await pacer.due() if pacer is not None else time.perf_counter()
    return began if clock.running() else None


def _days(today: date) -> dict[str, str]:
    return {"from": today.isoformat(), "to": (today + timedelta(days=13)).isoformat()}


# ---------------------------------------------------------------------------------------------- the flow

async def one_call(client: HttpClient, rec: Recorder, rng: random.Random, *, practice: str, patients: list[str],
                   search_limit: int, window: dict[str, str], began: float) -> None:
    r = await client.post("/api/v1/calls", json={})
    rec.record("call_start", began, r)
    if r.status != 201:
        await asyncio.sleep(0.05)  # a refused pick-up (or the desk away): do not spin
        return
    call_id = r.json()["id"]
    nhs = rng.choice(patients)

    t = time.perf_counter()
    rec.record("identify", t, await client.get("/api/v1/patients", params={"nhs_number": nhs}))

    hold = slot_id = None
    for _attempt in range(HOLD_ATTEMPTS):
        t = time.perf_counter()
        r = await client.get("/api/v1/slots", params={"practice": practice, **window, "limit": search_limit})
        rec.record("search", t, r)
        items = r.json()["items"] if r.status == 200 else []
        if not items:
            break
        slot_id = rng.choice(items)["id"]
        t = time.perf_counter()
        r = await client.post("/api/v1/holds", json={"slot_id": slot_id})
        rec.record("hold", t, r)
        if r.status == 201:
            hold = r.json()["hold_id"]
            break

    appointment = None
    if hold is not None:
        t = time.perf_counter()
        r = await client.post("/api/v1/appointments", json={"slot_id": slot_id, "hold_id": hold, "nhs_number": nhs,
                                                             "reason": "8am rush"})
        rec.record("book", t, r)
        if r.status == 201:
            appointment = r.json()
            rec.booked(t, appointment)

    t = time.perf_counter()
    close = {"disposition": "booked" if appointment else "no_slot_callback", "nhs_number": nhs, "practice": practice}
    if appointment:
        close["appointment_id"] = appointment["id"]
    r = await client.request("PATCH", f"/api/v1/calls/{call_id}", json=close)
    rec.record("wrap_up", t, r)
    if r.status == 200 and appointment and began >= rec.measure_from:
        rec.completed_calls += 1


async def flow_agent(client: HttpClient, rec: Recorder, clock: Clock, rng: random.Random, *, practice: str,
                     patients: list[str], search_limit: int, today: date, pacer: Pacer | None = None) -> None:
    window = _days(today)
    while (began := await _next_start(clock, pacer)) is not None:
        await one_call(client, rec, rng, practice=practice, patients=patients, search_limit=search_limit,
                       window=window, began=began)


# ---------------------------------------------------------------------------------------------- bookings only

class SlotPool:
    """Slot ids to book, per practice. Calm agents take a slot nobody else will; hot agents pick among the first
    few still open, so several of them go for the same slot at once."""

    def __init__(self, slots: dict[str, list[str]], rng: random.Random) -> None:
        self.slots = {ods: list(ids) for ods, ids in slots.items()}
        for ids in self.slots.values():
            ids.reverse()  # pop() from the end gives the earliest first
        self.rng = rng

    def take(self, practice: str) -> str | None:
        ids = self.slots.get(practice)
        return ids.pop() if ids else None

    def contend(self, practice: str, among: int = 4) -> str | None:
        ids = self.slots.get(practice)
        if not ids:
            return None
        return ids[-1 - self.rng.randrange(min(among, len(ids)))]

    def settle(self, practice: str, slot_id: str) -> None:
        ids = self.slots.get(practice)
        if ids and slot_id in ids[-8:]:
            ids.remove(slot_id)


async def book_agent(client: HttpClient, rec: Recorder, clock: Clock, rng: random.Random, pool: SlotPool, *,
                     practice: str, patients: list[str], hot: bool, pacer: Pacer | None = None) -> None:
    while (t := await _next_start(clock, pacer)) is not None:
        slot_id = pool.contend(practice) if hot else pool.take(practice)
        if slot_id is None:
            rec.slots_exhausted += 1
            return
        r = await client.post("/api/v1/appointments", json={"slot_id": slot_id, "nhs_number": rng.choice(patients),
                                                             "reason": "8am rush"})
        rec.record("book", t, r)
        if hot:
            pool.settle(practice, slot_id)
        if r.status == 201:
            rec.booked(t, r.json())


async def search_agent(client: HttpClient, rec: Recorder, clock: Clock, rng: random.Random, *, practices: list[str],
                       today: date, pacer: Pacer | None = None) -> None:
    """A 20-practice, 14-day search (first page of 50): an agent looking across a whole area."""
    window = _days(today)
    while (t := await _next_start(clock, pacer)) is not None:
        chosen = rng.sample(practices, min(WIDE_SEARCH_PRACTICES, len(practices)))
        rec.record("search_wide", t, await client.get("/api/v1/slots", params={"practice": chosen, **window,
                                                                             "limit": 50}))


async def fetch_slots(url: str, token: str, practices: list[str], today: date, *, concurrency: int = 8) -> dict[str, list[str]]:
    """Every slot the centre may book now in each practice's next 14 days, through the API, earliest first."""
    gate = asyncio.Semaphore(concurrency)
    out: dict[str, list[str]] = {}

    async def one(ods: str) -> None:
        async with gate:
            client = HttpClient(url, {"Authorization": f"Bearer {token}"}, timeout=60)
            ids: list[str] = []
            cursor = None
            while True:
                params: dict[str, Any] = {"practice": ods, **_days(today), "limit": 500}
                if cursor:
                    params["cursor"] = cursor
                r = await client.get("/api/v1/slots", params=params)
                if r.status != 200:
                    raise RuntimeError(f"fetching slots of {ods}: {r.status} {r.body[:200]!r}")
                page = r.json()
                ids += [s["id"] for s in page["items"]]
                cursor = page.get("next_cursor")
                if not cursor:
                    break
            client.close()
            out[ods] = ids

    await asyncio.gather(*(one(ods) for ods in practices))
    return out


# ---------------------------------------------------------------------------------------------- the run

def _token(cfg: RushConfig, username: str, role: str = "agent") -> str:
    from services.auth import issue_staff_token

    return issue_staff_token(username, role, cfg.jwt_secret, int(cfg.warmup + cfg.duration + 3600))


async def _dashboard_bookings(url: str, token: str, practices: list[str]) -> int | None:
    client = HttpClient(url, {"Authorization": f"Bearer {token}"})
    try:
        r = await client.get("/api/v1/dashboard")
        if r.status != 200:
            return None
        by_practice = r.json()["bookings_today_by_practice"]
        return sum(by_practice.get(ods, 0) for ods in practices)
    finally:
        client.close()


async def run_rush(cfg: RushConfig, region: Region, checks: RunChecks, *, log: Callable[[str], None] = print,
                   progress: Callable[[Recorder, Clock], Any] | None = None,
                   during: Callable[[Recorder, Clock], Any] | None = None,
                   processes: Callable[[], dict[str, int]] | None = None,
                   recorder: Recorder | None = None) -> dict[str, Any]:
    """Drive the load, then check the databases. `progress(rec, clock)` is called twice a second; `during` is
    awaited alongside the agents (the fault drills kill processes from it); `processes()` names the stack's
    process ids, for the CPU figures."""
    rng = random.Random(8)
    today = date.today()
    hot = region.practices[:cfg.hot_practices]
    calm = region.practices[cfg.hot_practices:] or region.practices
    assert len(region.agents) >= cfg.agents + cfg.contention_agents
    supervisor_token = _token(cfg, region.supervisor, "supervisor")
    dashboard_before = await _dashboard_bookings(cfg.url, supervisor_token, region.practices)

    assignments: list[tuple[str, str, bool]] = []  # username, practice, hot
    for n in range(cfg.agents):
        assignments.append((region.agents[n], calm[n % len(calm)], False))
    for n in range(cfg.contention_agents):
        assignments.append((region.agents[cfg.agents + n], hot[n % len(hot)], True))

    clients = [HttpClient(cfg.url, {"Authorization": f"Bearer {_token(cfg, user)}"}, timeout=cfg.request_timeout)
               for user, _p, _h in assignments]
    if cfg.mode == "search":
        pool = None
    elif cfg.mode == "flow":
        # Agents start their shift available; a refusal here shows up as refused pick-ups in the report.
        async def available(client: HttpClient, user: str) -> None:
            await client.request("PUT", f"/api/v1/agents/{user}/state", json={"state": "available"})

        await asyncio.gather(*(available(c, u) for c, (u, _p, _h) in zip(clients, assignments)))
        pool = None
    else:
        log("rush: fetching bookable slots for --mode book")
        pool = SlotPool(await fetch_slots(cfg.url, supervisor_token, region.practices, today), rng)
        log(f"rush: {sum(len(v) for v in pool.slots.values())} bookable slots")

    # Nothing of an earlier run is still in flight here, and this run's requests all start after this instant:
    # a window reaching back into an earlier run would count a booking whose request began before it (the
    # appointment's time) and whose event was recorded after it (the event's time) as an event without a booking.
    since = datetime.now(timezone.utc)
    since_perf = time.perf_counter()
    load_before = os.getloadavg()
    clock = Clock(cfg.warmup, cfg.duration)
    # A caller's own recorder (a drill looks at every request afterwards) or a new one.
    rec = recorder or Recorder()
    rec.measure_from = clock.measure_from
    if cfg.keep_timeline and rec.timeline is None:
        rec.timeline = []

    pacer = Pacer(cfg.rate) if cfg.rate else None  # one schedule shared by every agent

    def agent_task(n: int) -> Any:
        user, practice, is_hot = assignments[n]
        agent_rng = random.Random(n)
        if cfg.mode == "search":
            return search_agent(clients[n], rec, clock, agent_rng, practices=region.practices, today=today,
                                pacer=pacer)
        if cfg.mode == "flow":
            return flow_agent(clients[n], rec, clock, agent_rng, practice=practice, patients=region.patients[practice],
                              search_limit=HOT_SEARCH_LIMIT if is_hot else SEARCH_LIMIT, today=today, pacer=pacer)
        assert pool is not None
        return book_agent(clients[n], rec, clock, agent_rng, pool, practice=practice,
                          patients=region.patients[practice], hot=is_hot, pacer=pacer)

    cpu_from: list[Any] = []

    async def ticker() -> None:
        while clock.running():
            if progress is not None:
                progress(rec, clock)
            if not cpu_from and time.perf_counter() >= clock.measure_from:
                cpu_from.extend([time.perf_counter(), cpu.snapshot(processes() if processes else {})])
            await asyncio.sleep(0.5)

    tasks = [asyncio.ensure_future(agent_task(n)) for n in range(len(assignments))]
    side = [asyncio.ensure_future(ticker())]
    if during is not None:
        side.append(asyncio.ensure_future(during(rec, clock)))
    try:
        # Bounded: past the deadline a call in flight may finish, each request within its own timeout.
        done, pending = await asyncio.wait(tasks, timeout=cfg.warmup + cfg.duration + 6 * cfg.request_timeout + 30)
        for task in pending:
            task.cancel()
        for task in done:
            if task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
        await asyncio.gather(*side)
    finally:
        for task in side:
            task.cancel()
        for client in clients:
            client.close()
    cpu_cores = None
    if cpu_from:
        cpu_cores = cpu.cores_used(cpu_from[1], cpu.snapshot(processes() if processes else {}),
                                   time.perf_counter() - cpu_from[0])
    if progress is not None:
        progress(rec, clock)
    measured = max(1e-9, max(rec.last_done, clock.deadline) - clock.measure_from)
    measured_from = since + timedelta(seconds=clock.measure_from - since_perf)
    load_after = os.getloadavg()

    log("rush: load done; checking the databases and waiting for the events to drain")
    events = await checks.events(since, drain_timeout=cfg.drain_timeout, expected=rec.bookings_total, log=log)
    stored = await checks.existing_appointments(rec.booked_ids)
    dashboard_after = await _dashboard_bookings(cfg.url, supervisor_token, region.practices)

    statuses = {step: dict(sorted((str(k), v) for k, v in rec.statuses[step].items())) for step in STEPS
                if rec.statuses.get(step)}
    errors: Counter = Counter()
    for counts in rec.statuses.values():
        for status, n in counts.items():
            if status >= 400 or status <= 0:
                errors[str(status)] += n
    report: dict[str, Any] = {
        "mode": cfg.mode,
        "url": cfg.url,
        "agents": cfg.agents,
        "contention_agents": cfg.contention_agents,
        "hot_practices": hot,
        # Open loop: calls (flow), bookings (book) or searches (search) offered a second; None: closed loop.
        "offered_rate_per_s": cfg.rate,
        "practices": len(region.practices),
        "duration_s": cfg.duration,
        "warmup_s": cfg.warmup,
        "measured_s": round(measured, 2),
        # The measured window on the wall clock, to find its lines in the processes' logs.
        "measured_from_utc": measured_from.isoformat(),
        "measured_until_utc": (measured_from + timedelta(seconds=measured)).isoformat(),
        "bookings": rec.bookings,
        "bookings_per_s": per_second(rec.bookings, measured),
        "bookings_total": rec.bookings_total,
        "completed_calls": rec.completed_calls if cfg.mode == "flow" else None,
        "completed_calls_per_s": per_second(rec.completed_calls, measured) if cfg.mode == "flow" else None,
        "requests": rec.requests,
        "requests_per_s": per_second(rec.requests, measured),
        "steps": {step: latency_summary(rec.latencies[step]) for step in STEPS if rec.latencies.get(step)},
        "statuses": statuses,
        "errors": dict(sorted(errors.items())),
        "slots_exhausted_agents": rec.slots_exhausted,
        "double_bookings": await checks.double_bookings(),
        **await checks.slots_out_of_step(),
        "acknowledged_bookings_stored": stored,
        # Stored bookings made by this run's accounts: more than the 201s only if a process died between its
        # commit and its answer.
        "appointments_stored": await checks.appointments_by(region.agent_prefix, since) if region.agent_prefix else None,
        "acknowledged_bookings_missing": rec.bookings_total - stored,
        **events,
        "dashboard_bookings_counted": (None if dashboard_before is None or dashboard_after is None
                                       else dashboard_after - dashboard_before),
        # Average cores used while measuring; postgres counts every backend on the machine.
        "cpu_cores": cpu_cores,
        "cpu_ms_per_booking": ({k: round(v * measured * 1000 / rec.bookings, 2) for k, v in cpu_cores.items()}
                               if cpu_cores and rec.bookings else None),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
    }
    return report


def add_ratios(report: dict[str, Any], limits: dict[str, Any] | None) -> None:
    """ours ÷ raw for the figures both runs have."""
    if not limits:
        report["ratio_to_raw"] = None
        return
    raw = {k: (v or {}).get("per_s") for k, v in limits.items() if isinstance(v, dict)}
    wide = "search_wide" in report["steps"]
    search = report["steps"].get("search_wide" if wide else "search", {})
    searches_per_s = search.get("count", 0) / report["measured_s"] if search else None
    report["ratio_to_raw"] = {
        "bookings_vs_booking_sql": ratio(report["bookings_per_s"], raw.get("booking_sql")),
        "bookings_vs_minimal_booking_endpoint": ratio(report["bookings_per_s"], raw.get("minimal_booking_endpoint")),
        "booked_events_vs_jetstream_publish": ratio(report["bookings_per_s"], raw.get("jetstream_publish")),
        "requests_vs_bare_endpoint": ratio(report["requests_per_s"], raw.get("bare_endpoint")),
        "searches_vs_slot_query_sql": (ratio(searches_per_s, raw.get("wide_slot_query_sql" if wide else "slot_query_sql"))
                                       if searches_per_s else None),
    }
    report["raw"] = {k: v for k, v in raw.items() if v is not None}


def format_report(report: dict[str, Any]) -> str:
    loop = (f"open loop, {report['offered_rate_per_s']}/s offered" if report.get("offered_rate_per_s")
            else "closed loop")
    lines = [f"Rush ({report['mode']}, {loop}): {report['agents']} agents + {report['contention_agents']} contending "
             f"for {', '.join(report['hot_practices'])}; {report['practices']} practices; {report['measured_s']} s "
             f"measured after {report['warmup_s']} s warm-up"]
    lines.append(f"  bookings            {report['bookings']}  ({report['bookings_per_s']}/s; "
                 f"{report['bookings_total']} including warm-up)")
    if report.get("completed_calls") is not None:
        lines.append(f"  completed calls     {report['completed_calls']}  ({report['completed_calls_per_s']}/s)")
    lines.append(f"  requests            {report['requests']}  ({report['requests_per_s']}/s)")
    lines.append(f"  {'step':18s} {'count':>7s} {'p50 ms':>8s} {'p95 ms':>8s} {'p99 ms':>8s} {'max ms':>8s}  statuses")
    for step, s in report["steps"].items():
        lines.append(f"  {step:18s} {s['count']:>7d} {s['p50_ms']:>8} {s['p95_ms']:>8} {s['p99_ms']:>8} {s['max_ms']:>8}"
                     f"  {report['statuses'].get(step, {})}")
    if report.get("time_inside"):
        lines.extend(format_time_inside(report["time_inside"]))
    lines.append(f"  errors by status    {report['errors'] or 'none'}  (409 = lost a race for a slot: expected)")
    lines.append(f"  double bookings     {report['double_bookings']}  (slots out of step: "
                 f"{report['booked_slots_without_appointment']} booked without appointment, "
                 f"{report['appointments_on_unbooked_slots']} appointments on unbooked slots)")
    lines.append(f"  acknowledged stored {report['acknowledged_bookings_stored']} of {report['bookings_total']} "
                 f"(missing {report['acknowledged_bookings_missing']})")
    lines.append(f"  events              created {report['events_created']}, published {report['events_published']}, "
                 f"applied by agent-desk {report['events_applied']}; dashboard counted "
                 f"{report['dashboard_bookings_counted']}; drained {report['drained']} "
                 f"(waited {report['drain_wait_seconds']} s)")
    lines.append(f"  event lag           p50 {report['event_lag_p50_ms']} ms, p95 {report['event_lag_p95_ms']} ms, "
                 f"p99 {report['event_lag_p99_ms']} ms, max {report['event_lag_max_ms']} ms "
                 f"(booking transaction -> applied by agent-desk)")
    if report.get("ratio_to_raw"):
        lines.append("  ours / raw          " + ", ".join(f"{k} {v}" for k, v in report["ratio_to_raw"].items()
                                                           if v is not None))
    if report.get("cpu_cores"):
        lines.append("  cores used          " + ", ".join(f"{k} {v}" for k, v in sorted(
            report["cpu_cores"].items(), key=lambda kv: -kv[1])))
    if report.get("cpu_ms_per_booking"):
        lines.append("  CPU ms per booking  " + ", ".join(f"{k} {v}" for k, v in sorted(
            report["cpu_ms_per_booking"].items(), key=lambda kv: -kv[1])))
    lines.append(f"  load average        before {report['load_average_before']}, after {report['load_average_after']}")
    return "\n".join(lines)
