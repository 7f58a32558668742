"""Wiring for the `callcentre bench` commands: the stack to measure (a running one, or one started on
PostgreSQL for the run), the region, the raw limits, the progress bar and the report files."""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from callcentre.bench import limits as limits_bench
from callcentre.bench import rush as rush_bench
from callcentre.bench.checks import RunChecks
from callcentre.bench.inside import time_inside
from callcentre.bench.localstack import CHEAP_PASSWORD_HASHING, PostgresStack
from callcentre.bench.region import seed_region



@dataclass
class Target:
    url: str
    admin: tuple[str, str]
    jwt_secret: str
    booking_db: str
    desk_db: str


def target_from_running(url: str, data_dir: Path | None, booking_db: str | None, desk_db: str | None) -> Target:
    """A stack someone else runs: secrets from DATA_DIR/secrets.json or the environment, databases from the
    options, the environment, or the SQLite files under DATA_DIR/db."""
    secrets: dict[str, str] = {}
    if data_dir is not None and (data_dir / "secrets.json").exists():
        secrets = json.loads((data_dir / "secrets.json").read_text())
    admin = (os.environ.get("CALLCENTRE_ADMIN_USER", secrets.get("admin_user", "admin")),
             os.environ.get("CALLCENTRE_ADMIN_PASSWORD", secrets.get("admin_password", "")))
    from gateway.settings import DEV_JWT_SECRET

    jwt_secret = os.environ.get("CALLCENTRE_JWT_SECRET", secrets.get("jwt_secret", DEV_JWT_SECRET))

    def database(option: str | None, env: str, name: str) -> str:
        if option:
            return option
        if os.environ.get(env):
            return os.environ[env]
        if data_dir is not None:
            return f"sqlite+aiosqlite:///{(data_dir / 'db' / name).resolve()}.db"
        raise SystemExit(f"give --{name.split('-')[0]}-db (or {env}, or --data-dir): the checks read the database")

    return Target(url.rstrip("/"), admin, jwt_secret, database(booking_db, "BOOKING_DATABASE_URL", "booking-svc"),
                  database(desk_db, "DESK_DATABASE_URL", "agent-desk-svc"))


def _progress(console: Console, total: float) -> tuple[Progress, Any]:
    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.fields[figures]}"),
                        TimeRemainingColumn(), console=console, refresh_per_second=2, transient=False)
    task = progress.add_task("rush", total=total, figures="")
    return progress, task


async def rush(*, url: str | None, data_dir: Path | None, booking_db: str | None, desk_db: str | None, mode: str,
               agents: int, contention_agents: int, hot_practices: int, duration: float, warmup: float,
               practices: int, patients_per_practice: int, clinicians: int, with_limits: bool,
               limits_seconds: float, service_workers: int, drain_timeout: float, json_path: Path | None,
               console: Console, rate: float | None = None) -> dict[str, Any]:
    log = console.print
    stack: PostgresStack | None = None
    tmp: tempfile.TemporaryDirectory[str] | None = None
    try:
        if url is None:
            tmp = tempfile.TemporaryDirectory(prefix="ccrush-")
            workers = {f"{p}WORKERS": str(service_workers) for p in ("BOOKING_", "REGISTRY_", "DESK_", "GATEWAY_")}
            # Each worker process has its own pool: share the default 20 connections per service between them,
            # so that several workers stay inside PostgreSQL's default max_connections (100).
            workers.update({f"{p}DATABASE_POOL_SIZE": str(max(4, 20 // service_workers))
                            for p in ("BOOKING_", "REGISTRY_", "DESK_")})
            stack = PostgresStack(Path(tmp.name) / "var", extra_env={**CHEAP_PASSWORD_HASHING, **workers}, log=log)
            try:
                await asyncio.to_thread(stack.start)
            except SystemExit:
                _show_log_tails(Path(tmp.name) / "var" / "logs", log)  # the folder is removed on the way out
                raise
            target = Target(stack.url, stack.admin_credentials, stack.secrets["jwt_secret"],
                            stack.database_url("booking-svc"), stack.database_url("agent-desk-svc"))
            log(f"rush: started a stack on PostgreSQL at {target.url}")
        else:
            target = target_from_running(url, data_dir, booking_db, desk_db)
            log(f"rush: against {target.url} (raise its GATEWAY_RATE_LIMIT_PRINCIPAL, e.g. to 100000000/hour, or "
                "most requests are 429s)")

        limits_report = None
        if with_limits:
            limits_report = await limits_bench.measure(limits_seconds, log=log)
            log(limits_bench.format_report(limits_report))

        region = await seed_region(target.url, target.admin, practices=practices,
                                   patients_per_practice=patients_per_practice, clinicians=clinicians,
                                   agents=agents + contention_agents, agent_prefix=f"rush-{uuid.uuid4().hex[:6]}-",
                                   log=log)
        checks = RunChecks(target.booking_db, target.desk_db)
        await checks.wait_for_registrations(region.practices, sum(len(v) for v in region.patients.values()))
        if await checks.refresh_statistics():
            log("rush: booking-svc's statistics refreshed (ANALYZE) after seeding, as autovacuum would")
        cfg = rush_bench.RushConfig(url=target.url, jwt_secret=target.jwt_secret, mode=mode, agents=agents,
                                    contention_agents=contention_agents, hot_practices=hot_practices,
                                    duration=duration, warmup=warmup, drain_timeout=drain_timeout, rate=rate)
        progress, task = _progress(console, warmup + duration)

        def tick(rec: rush_bench.Recorder, clock: rush_bench.Clock) -> None:
            import time

            elapsed = min(time.perf_counter() - clock.started, warmup + duration)
            phase = "warm-up" if time.perf_counter() < clock.measure_from else "measuring"
            errors = sum(n for c in rec.statuses.values() for s, n in c.items() if s >= 500 or s <= 0)
            rate = rec.bookings / max(1e-9, time.perf_counter() - clock.measure_from) if phase == "measuring" else 0
            progress.update(task, completed=elapsed, figures=f"{phase}  bookings {rec.bookings_total}  "
                                                             f"{rate:.0f}/s  5xx/timeouts {errors}")

        with progress:
            report = await rush_bench.run_rush(cfg, region, checks, log=log, progress=tick,
                                               processes=lambda: _pids(stack, data_dir))
        await checks.close()
        stack_dir = stack.data_dir if stack is not None else data_dir
        logs = stack_dir / "logs" if stack_dir is not None else None
        if logs is not None and logs.is_dir():
            report["time_inside"] = time_inside(logs, datetime.fromisoformat(report["measured_from_utc"]),
                                                datetime.fromisoformat(report["measured_until_utc"]))
        report["stack"] = ("started on PostgreSQL for this run; GATEWAY_RATE_LIMIT_PRINCIPAL=100000000/hour; "
                           f"{service_workers} worker(s) per service" if stack else "given by --url")
        rush_bench.add_ratios(report, limits_report)
        report["limits"] = limits_report
        console.print(rush_bench.format_report(report))
        if json_path is not None:
            json_path.write_text(json.dumps(report, indent=2, default=str))
            log(f"rush: report written to {json_path}")
        return report
    finally:
        if stack is not None:
            await asyncio.to_thread(stack.stop)
        if tmp is not None:
            tmp.cleanup()


def _show_log_tails(logs: Path, log: Callable[[str], None], lines: int = 30) -> None:
    for path in sorted(logs.glob("*.log")):
        tail = path.read_text(errors="replace").splitlines()[-lines:]
        log(escape(f"--- last {len(tail)} lines of {path.name}\n" + "\n".join(tail)))


def _pids(stack: PostgresStack | None, data_dir: Path | None) -> dict[str, int]:
    names = ("gateway", "booking-svc", "practice-registry-svc", "agent-desk-svc", "nats")
    if stack is not None:
        return {n: pid for n in names if (pid := stack.pid(n)) is not None}
    out = {}
    for n in names:
        try:
            out[n] = int((data_dir / "run" / f"{n}.pid").read_text()) if data_dir else None
        except (OSError, ValueError):
            continue
    return {k: v for k, v in out.items() if v}
