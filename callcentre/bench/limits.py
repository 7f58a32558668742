"""`callcentre bench limits`: this machine's raw ceilings for the work a booking does, measured in the same run
so the rush can say how much of them the centre keeps (ours ÷ raw).

- booking_sql: the booking transaction alone (conditional UPDATE of the slot + INSERT of the appointment, under
  a partial unique index), asyncpg straight at a scratch PostgreSQL database, N clients.
- slot_query_sql: one practice's next 14 days of free slots (first 50), asyncpg, N clients.
- jetstream_publish: JetStream publishes with ack (file storage, Nats-Msg-Id), pipelined, against a scratch
  nats-server.
- bare_endpoint: the same server stack as the services (uvicorn + uvloop + httptools with coalesced response
  writes, services.httpserver + FastAPI), one worker,
  a GET answering a small JSON document.
- minimal_booking_endpoint: FastAPI + asyncpg + JetStream: POST a slot id, book it in one transaction, publish
  the event with ack, answer 201. No gateway, no ORM, no audit, feed or outbox.

Everything runs on 127.0.0.1 and is removed afterwards."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from callcentre.bench.client import HttpClient
from callcentre.bench.localstack import create_databases_async, drop_databases_async
from callcentre.bench.stats import latency_summary, per_second
from callcentre.stack import free_port, nats_server_binary
from services.httpserver import HTTP_PROTOCOL

# The rush's region, in bulk: 100 practices, 14 days, 6 clinicians, 08:00-18:00 in 10-minute slots.
PRACTICES, DAYS, CLINICIANS, SLOTS_PER_DAY = 100, 14, 6, 60
SLOTS = PRACTICES * DAYS * CLINICIANS * SLOTS_PER_DAY
EVENT_BYTES = 700  # about an AppointmentBooked envelope

SCHEMA = """
CREATE TABLE slots (id text PRIMARY KEY, ods_code text NOT NULL, start_at timestamptz NOT NULL,
                    status text NOT NULL DEFAULT 'free', hold_id text, held_by text, hold_expires_at timestamptz);
CREATE INDEX ix_slots_ods_start ON slots (ods_code, start_at);
CREATE INDEX ix_slots_start_id ON slots (start_at, id);  -- booking-svc has both: earliest-first across practices
CREATE TABLE appointments (id text PRIMARY KEY, slot_id text NOT NULL, nhs_number text NOT NULL,
                           status text NOT NULL, created_at timestamptz NOT NULL);
CREATE UNIQUE INDEX uq_appointments_active_slot ON appointments (slot_id) WHERE status = 'booked';
"""
FILL = f"""
INSERT INTO slots (id, ods_code, start_at)
SELECT md5(p || '-' || d || '-' || c || '-' || m), 'P' || p,
       date_trunc('day', now()) + d * interval '1 day' + interval '8 hours' + m * interval '10 minutes'
FROM generate_series(0, {PRACTICES - 1}) AS p, generate_series(0, {DAYS - 1}) AS d,
     generate_series(1, {CLINICIANS}) AS c, generate_series(0, {SLOTS_PER_DAY - 1}) AS m;
ANALYZE slots;
"""
BOOK_UPDATE = ("UPDATE slots SET status = 'booked', hold_id = NULL, held_by = NULL, hold_expires_at = NULL "
               "WHERE id = $1 AND (status = 'free' OR (status = 'held' AND hold_expires_at <= now())) RETURNING id")
BOOK_INSERT = "INSERT INTO appointments (id, slot_id, nhs_number, status, created_at) VALUES ($1, $2, $3, 'booked', now())"
SLOT_QUERY = ("SELECT id, ods_code, start_at, status FROM slots WHERE ods_code = $1 AND start_at >= now() "
              "AND start_at < now() + interval '14 days' AND status = 'free' ORDER BY start_at, id LIMIT 50")


async def _timed_loop(clients: int, seconds: float, one: Callable[[int], Awaitable[bool]]) -> dict[str, Any]:
    """Run `one(client_number)` in a loop in each of `clients` tasks for `seconds`; counts the True results."""
    latencies: list[float] = []
    done = [0]
    stop_at = time.perf_counter() + seconds

    async def client(n: int) -> None:
        while time.perf_counter() < stop_at:
            began = time.perf_counter()
            if await one(n):
                done[0] += 1
                latencies.append(time.perf_counter() - began)

    began = time.perf_counter()
    await asyncio.gather(*(client(n) for n in range(clients)))
    elapsed = time.perf_counter() - began
    summary = latency_summary(latencies)
    return {"per_s": per_second(done[0], elapsed), "clients": clients, "count": done[0],
            "p50_ms": summary["p50_ms"], "p99_ms": summary["p99_ms"]}


# pgbench (C, two threads) measures the database, not a Python client: one slot picked at random per
# transaction, claimed and booked in one statement (a miss on an already booked slot still counts: ~5%).
PGBENCH_BOOKING = f"""\\set p random(0, {PRACTICES - 1})
\\set d random(0, {DAYS - 1})
\\set c random(1, {CLINICIANS})
\\set m random(0, {SLOTS_PER_DAY - 1})
WITH claimed AS (UPDATE slots SET status = 'booked', hold_id = NULL, held_by = NULL, hold_expires_at = NULL
                 WHERE id = md5(:p || '-' || :d || '-' || :c || '-' || :m) AND (status = 'free' OR (status = 'held' AND hold_expires_at <= now()))
                 RETURNING id)
INSERT INTO appointments (id, slot_id, nhs_number, status, created_at)
SELECT md5(random()::text || clock_timestamp()::text), id, '9990000018', 'booked', now() FROM claimed;
"""
PGBENCH_SLOT_QUERY = f"""\\set p random(0, {PRACTICES - 1})
SELECT id, ods_code, start_at, status FROM slots WHERE ods_code = 'P' || :p AND start_at >= now()
AND start_at < now() + interval '14 days' AND status = 'free' ORDER BY start_at, id LIMIT 50;
"""

# Twenty neighbouring practices (of PRACTICES), their next 14 days, the first page of 50, earliest first.
PGBENCH_WIDE_SLOT_QUERY = f"""\\set p random(0, {PRACTICES - 1})
SELECT id, ods_code, start_at, status FROM slots WHERE ods_code IN ({", ".join(f"'P' || ((:p + {i}) % {PRACTICES})" for i in range(20))})
AND start_at >= now() AND start_at < now() + interval '14 days' AND status = 'free' ORDER BY start_at, id LIMIT 50;
"""


async def _prepare_sql(dsn: str) -> list[str]:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(SCHEMA)
        await conn.execute(FILL)
        return [r["id"] for r in await conn.fetch("SELECT id FROM slots ORDER BY random()")]
    finally:
        await conn.close()


def _pgbench(dsn: str, script: str, clients: int, seconds: float) -> dict[str, Any] | None:
    """tps and mean latency from pgbench, or None when pgbench is not installed."""
    import re
    import shutil

    binary = shutil.which("pgbench")
    if binary is None:
        return None
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
        f.write(script)
    try:
        out = subprocess.run([binary, "-n", "-c", str(clients), "-j", str(min(clients, os.cpu_count() or 1)),
                              "-T", str(max(1, round(seconds))), "-f", f.name, dsn],
                             capture_output=True, text=True, timeout=seconds + 60)
    finally:
        os.unlink(f.name)
    tps = re.search(r"tps = ([0-9.]+)", out.stdout)
    latency = re.search(r"latency average = ([0-9.]+) ms", out.stdout)
    if out.returncode != 0 or tps is None:
        raise RuntimeError(f"pgbench failed: {out.stderr[-500:]}")
    return {"per_s": round(float(tps.group(1)), 1), "clients": clients, "mean_ms": float(latency.group(1)) if latency else None,
            "client": "pgbench"}


def _pgbench_runs(dsn: str, script: str, client_counts: tuple[int, ...], seconds: float) -> dict[str, Any] | None:
    runs = [r for r in (_pgbench(dsn, script, clients, seconds) for clients in client_counts) if r is not None]
    if not runs:
        return None
    return {**max(runs, key=lambda r: r["per_s"]), "runs": runs}


async def _booking_sql_asyncpg(dsn: str, ids: list[str], seconds: float,
                               client_counts: tuple[int, ...]) -> dict[str, Any]:
    """The same transaction from one Python process (asyncpg, as the services use): the client's share shows."""
    import asyncpg

    runs = []
    cursor = iter(ids)
    for clients in client_counts:
        pool = await asyncpg.create_pool(dsn, min_size=clients, max_size=clients)

        async def book(_n: int) -> bool:
            slot_id = next(cursor)
            async with pool.acquire() as c, c.transaction():
                if await c.fetchval(BOOK_UPDATE, slot_id) is None:
                    return False
                await c.execute(BOOK_INSERT, uuid.uuid4().hex, slot_id, "9990000018")
            return True

        runs.append({**await _timed_loop(clients, seconds, book), "client": "asyncpg"})
        await pool.close()
    best = max(runs, key=lambda r: r["per_s"])
    return {**best, "runs": runs}


async def _slot_query_sql(dsn: str, seconds: float, clients: int) -> dict[str, Any]:
    import asyncpg

    pool = await asyncpg.create_pool(dsn, min_size=clients, max_size=clients)
    counter = [0]

    async def query(_n: int) -> bool:
        counter[0] += 1
        async with pool.acquire() as c:
            await c.fetch(SLOT_QUERY, f"P{counter[0] % PRACTICES}")
        return True

    try:
        return await _timed_loop(clients, seconds, query)
    finally:
        await pool.close()


async def _jetstream_publish(nats_url: str, seconds: float, in_flight: int) -> dict[str, Any]:
    import nats
    from nats.js.api import StorageType, StreamConfig

    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream(timeout=5)
        await js.add_stream(StreamConfig(name="LIMITS", subjects=["limits.>"], storage=StorageType.FILE,
                                         duplicate_window=120))
        payload = os.urandom(EVENT_BYTES // 2).hex().encode()

        async def publish(_n: int) -> bool:
            await js.publish("limits.appointment.booked.v1", payload, headers={"Nats-Msg-Id": uuid.uuid4().hex})
            return True

        return {**await _timed_loop(in_flight, seconds, publish), "message_bytes": len(payload)}
    finally:
        await nc.close()


# ---------------------------------------------------------------------------------------------- HTTP servers

def _serve(factory: str, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", f"callcentre.bench.servers:{factory}", "--factory", "--host", "127.0.0.1",
         "--port", str(port), "--loop", "uvloop", "--http", HTTP_PROTOCOL, "--no-access-log", "--log-level", "warning"],
        env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    import socket

    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{factory} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{factory} did not start")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return 0.0


async def _http_load(url: str, seconds: float, clients: int, make_request) -> dict[str, Any]:  # noqa: ANN001
    connections = [HttpClient(url) for _ in range(clients)]
    try:
        async def one(n: int) -> bool:
            response = await make_request(connections[n])
            return response.status in (200, 201)

        return await _timed_loop(clients, seconds, one)
    finally:
        for c in connections:
            c.close()


async def _measure_server(factory: str, env: dict[str, str], seconds: float, clients: int,
                          make_request) -> dict[str, Any]:  # noqa: ANN001
    port = free_port()
    proc = await asyncio.to_thread(_serve, factory, port, env)
    try:
        url = f"http://127.0.0.1:{port}"
        await _http_load(url, min(1.0, seconds), clients, make_request)  # warm-up
        cpu_before = _cpu_seconds(proc.pid)
        figures = await _http_load(url, seconds, clients, make_request)
        cpu = _cpu_seconds(proc.pid) - cpu_before
        if figures["count"]:
            figures["server_cpu_us_per_request"] = round(cpu / figures["count"] * 1e6, 1)
        return figures
    finally:
        await asyncio.to_thread(_stop, proc)


# ---------------------------------------------------------------------------------------------- the whole run

def _start_nats(store: Path) -> tuple[subprocess.Popen[bytes], str]:
    import socket

    port = free_port()
    proc = subprocess.Popen([nats_server_binary(), "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(store)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, f"nats://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("nats-server did not start")


async def measure(seconds: float = 4.0, *, sql_clients: tuple[int, ...] = (8, 32), http_clients: int = 32,
                  log: Callable[[str], None] = print) -> dict[str, Any]:
    """Every ceiling, each measured for `seconds` (plus set-up). Returns the figures (see the module doc)."""
    prefix = f"cclimits_{uuid.uuid4().hex[:8]}"
    dsns = await create_databases_async(prefix, ["sql", "endpoint"])
    tmp = tempfile.TemporaryDirectory(prefix="cclimits-")
    nats_proc, nats_url = _start_nats(Path(tmp.name) / "nats")
    report: dict[str, Any] = {"seconds_each": seconds, "cores": os.cpu_count()}
    try:
        ids = await _prepare_sql(dsns["sql"])
        log("limits: booking SQL alone (pgbench, conditional UPDATE + INSERT)")
        report["booking_sql"] = await asyncio.to_thread(_pgbench_runs, dsns["sql"], PGBENCH_BOOKING, sql_clients,
                                                        seconds)
        log("limits: booking SQL from one Python process (asyncpg)")
        report["booking_sql_asyncpg"] = await _booking_sql_asyncpg(dsns["sql"], ids, seconds, sql_clients)
        if report["booking_sql"] is None:
            report["booking_sql"] = report["booking_sql_asyncpg"]
        log("limits: one practice's 14-day slot query (first 50)")
        report["slot_query_sql"] = (await asyncio.to_thread(_pgbench_runs, dsns["sql"], PGBENCH_SLOT_QUERY,
                                                            (max(sql_clients),), seconds)
                                    or await _slot_query_sql(dsns["sql"], seconds, max(sql_clients)))
        log("limits: twenty practices' 14-day slot query (first 50)")
        report["wide_slot_query_sql"] = await asyncio.to_thread(_pgbench_runs, dsns["sql"], PGBENCH_WIDE_SLOT_QUERY,
                                                                (max(sql_clients),), seconds)
        log("limits: JetStream publish with ack")
        report["jetstream_publish"] = await _jetstream_publish(nats_url, seconds, 64)
        log("limits: bare FastAPI endpoint (uvicorn, uvloop, httptools, 1 worker)")
        report["bare_endpoint"] = await _measure_server(
            "bare_app", {}, seconds, http_clients, lambda c: c.get("/ping"))

        log("limits: minimal booking endpoint (FastAPI + asyncpg + JetStream publish, 1 worker)")
        endpoint_ids = iter(await _prepare_sql(dsns["endpoint"]))
        report["minimal_booking_endpoint"] = await _measure_server(
            "minimal_booking_app", {"LIMITS_DSN": dsns["endpoint"], "LIMITS_NATS_URL": nats_url}, seconds,
            http_clients, lambda c: c.post("/book", json={"slot_id": next(endpoint_ids), "nhs_number": "9990000018"}))
    finally:
        _stop(nats_proc)
        tmp.cleanup()
        await drop_databases_async(list(dsns.values()))
    return report


def format_report(report: dict[str, Any]) -> str:
    lines = [f"Raw limits on this machine ({report['cores']} cores, {report['seconds_each']} s each)"]
    labels = {
        "booking_sql": "booking SQL alone (UPDATE + INSERT)",
        "booking_sql_asyncpg": "  the same from one Python process",
        "slot_query_sql": "slot query, 1 practice, 14 days",
        "wide_slot_query_sql": "slot query, 20 practices, 14 days",
        "jetstream_publish": "JetStream publish with ack",
        "bare_endpoint": "bare FastAPI endpoint",
        "minimal_booking_endpoint": "minimal booking endpoint",
    }
    for key, label in labels.items():
        figures = report.get(key)
        if not figures:
            continue
        extra = f"  {figures['server_cpu_us_per_request']} us CPU/request" if "server_cpu_us_per_request" in figures else ""
        latency = (f"p50 {figures['p50_ms']} ms  p99 {figures['p99_ms']} ms" if "p50_ms" in figures
                   else f"mean {figures.get('mean_ms')} ms")
        lines.append(f"  {label:38s} {figures['per_s']:>9.1f}/s  {latency}  ({figures['clients']} clients, "
                     f"{figures.get('client', 'asyncpg' if key.endswith('sql') else 'lean HTTP client')}){extra}")
        runs = figures.get("runs", [])
        if len(runs) > 1:
            lines.append(f"  {'':38s} " + ", ".join(f"{r['per_s']:.0f}/s at {r['clients']} clients" for r in runs))
    return "\n".join(lines)
