"""`callcentre`: the operator's tool (local stack, seeding, benchmarks)."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import typer
from rich.console import Console

app = typer.Typer(help="Run and exercise the GP appointment call centre.", no_args_is_help=True)
bench_app = typer.Typer(help="Benchmarks: they print figures.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")
console = Console()


class _Stop(Exception):
    pass


def _raise_stop(signum: int, _frame: object) -> None:
    raise _Stop(signal.Signals(signum).name)


@app.command()
def up(
    gateway_port: int = typer.Option(8000, help="Port of the gateway (the one URL clients use)"),
    data_dir: Path = typer.Option(Path("./var"), help="Where databases, NATS storage, logs and pid files live"),
    seed_demo: bool = typer.Option(True, "--seed/--no-seed", help="Seed a demo region on first start"),
    any_ports: bool = typer.Option(False, "--any-ports", help="Any free ports for NATS and the services (tests, "
                                                              "benchmarks), not 4322 and 8101-8103"),
) -> None:
    """Start NATS, migrate and start every service and the gateway, seed a demo region on first start."""
    from callcentre.seed import seed
    from callcentre.stack import Stack

    started = time.monotonic()
    stack = Stack(data_dir.resolve(), gateway_port, any_ports=any_ports)
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)
    stack.prepare()
    try:
        console.print(f"[bold]callcentre[/]: data under {stack.data_dir}")
        stack.migrate()
        stack.build_children()
        stack.start_all()
        base = f"http://127.0.0.1:{gateway_port}"
        marker = stack.data_dir / "seeded"
        if seed_demo and not marker.exists():
            admin_user, admin_password = stack.admin_credentials
            seed(base, admin_user, admin_password, stack.data_dir, log=lambda m: console.print(m))
            marker.write_text(time.strftime("%Y-%m-%dT%H:%M:%S"))
        _print_banner(stack, base, time.monotonic() - started)
        while True:
            stack.supervise_once(lambda m: console.print(f"[yellow]supervisor[/]: {m}"))
            time.sleep(0.5)
    except _Stop as stop:
        console.print(f"callcentre: {stop} received, stopping")
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        stack.stop_all()
        console.print("callcentre: stopped")


def _print_banner(stack, base: str, seconds: float) -> None:  # type: ignore[no-untyped-def]
    demo_path = stack.data_dir / "demo.json"
    console.print(f"\n[bold green]The call centre is up[/] ({seconds:.1f}s)")
    console.print(f"  Gateway (API and agent UI): {base}/")
    console.print(f"  API spec:                   {base}/api/v1/openapi.json")
    console.print(f"  Readiness:                  {base}/readyz")
    console.print(f"  NATS:                       nats://127.0.0.1:{stack.ports['nats']}")
    admin_user, admin_password = stack.admin_credentials
    console.print(f"  Admin login:                {admin_user} / {admin_password}")
    if demo_path.exists():
        demo = json.loads(demo_path.read_text())
        for name, (user, password) in demo["logins"].items():
            if name != "admin":
                console.print(f"  Demo login:                 {user} / {password}")
        console.print(f"  Practice API keys:          {demo_path}")
    console.print(f"  Logs:                       {stack.data_dir / 'logs'}")
    console.print("Press Ctrl-C to stop.\n", highlight=False)


@app.command("seed")
def seed_command(
    url: str = typer.Option("http://127.0.0.1:8000", help="Gateway URL"),
    admin_user: str = typer.Option(..., envvar="CALLCENTRE_ADMIN_USER"),
    admin_password: str = typer.Option(..., envvar="CALLCENTRE_ADMIN_PASSWORD"),
    data_dir: Path = typer.Option(Path("./var")),
) -> None:
    """Seed a demo region into a running stack."""
    from callcentre.seed import seed

    data_dir.mkdir(parents=True, exist_ok=True)
    seed(url, admin_user, admin_password, data_dir, log=lambda m: console.print(m))


def _run_async(coroutine):  # noqa: ANN001, ANN202
    try:
        import uvloop

        return uvloop.run(coroutine)
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        import asyncio

        return asyncio.run(coroutine)


@bench_app.command("rush")
def bench_rush(
    url: str | None = typer.Option(None, help="Gateway of a running stack (default: start one on PostgreSQL)"),
    mode: str = typer.Option("flow", help="flow: whole calls; book: POST /appointments only; search: 20-practice "
                                          "14-day searches"),
    agents: int = typer.Option(200, help="Virtual agents, each on its own practice's patients"),
    contention_agents: int | None = typer.Option(
        None, help="Agents hammering the same few practices (default: 20 in flow and book; 0 in search, where a "
                   "search has nothing to contend for and they would only be more agents)"),
    hot_practices: int = typer.Option(3, help="How many practices the contention group shares"),
    duration: float = typer.Option(60.0, help="Seconds measured"),
    warmup: float = typer.Option(5.0, help="Seconds of load before measuring"),
    practices: int = typer.Option(40, help="Practices in the region seeded for the run"),
    patients_per_practice: int = typer.Option(200),
    clinicians: int = typer.Option(6, help="Clinicians per practice, each 08:00-18:00 in 10-minute slots"),
    limits: bool = typer.Option(True, "--limits/--no-limits", help="Measure the raw limits in the same run"),
    limits_seconds: float = typer.Option(4.0),
    service_workers: int = typer.Option(1, help="Worker processes per service and gateway (own stack only)"),
    drain_timeout: float = typer.Option(120.0, help="Longest wait for the events to be applied"),
    rate: float | None = typer.Option(None, min=0.1, help="Open loop: calls (flow), bookings (book) or searches "
                                                          "(search) a second; default: closed loop"),
    json_file: Path | None = typer.Option(None, "--json", help="Write the report here as JSON"),
    data_dir: Path | None = typer.Option(None, help="With --url: the stack's data dir (secrets, SQLite files, logs)"),
    booking_db: str | None = typer.Option(None, help="With --url: booking-svc's database URL, for the checks"),
    desk_db: str | None = typer.Option(None, help="With --url: agent-desk-svc's database URL, for the checks"),
) -> None:
    """The 8am rush through the gateway: bookings/s, per-step latency, double bookings, events, ours ÷ raw."""
    from callcentre.bench import runner

    if mode not in ("flow", "book", "search"):
        raise typer.BadParameter("--mode is flow, book or search")
    if contention_agents is None:
        contention_agents = 0 if mode == "search" else 20
    report = _run_async(runner.rush(
        url=url, data_dir=data_dir, booking_db=booking_db, desk_db=desk_db, mode=mode, agents=agents,
        contention_agents=contention_agents, hot_practices=hot_practices, duration=duration, warmup=warmup,
        practices=practices, patients_per_practice=patients_per_practice, clinicians=clinicians, with_limits=limits,
        limits_seconds=limits_seconds, service_workers=service_workers, drain_timeout=drain_timeout, rate=rate,
        json_path=json_file, console=console))
    if report["double_bookings"] or report["acknowledged_bookings_missing"] or not report["drained"]:
        raise typer.Exit(1)  # correctness failed (speed never fails a run)


@bench_app.command("limits")
def bench_limits(
    seconds: float = typer.Option(4.0, help="Seconds per measurement"),
    json_file: Path | None = typer.Option(None, "--json", help="Write the figures here as JSON"),
) -> None:
    """This machine's raw ceilings: booking SQL, slot query, JetStream publish, bare and minimal endpoints."""
    from callcentre.bench import limits as limits_bench

    report = _run_async(limits_bench.measure(seconds, log=console.print))
    console.print(limits_bench.format_report(report))
    if json_file is not None:
        json_file.write_text(json.dumps(report, indent=2))


@bench_app.command("gateway")
def bench_gateway(
    duration: float = typer.Option(10.0),
    concurrency: int = typer.Option(32),
    workers: int = typer.Option(1),
    rounds: int = typer.Option(3),
    upstream: str = typer.Option("service", help="service (kernel middleware) or bare (raw ASGI)"),
    direct_url: str | None = typer.Option(None),
    gateway_url: str | None = typer.Option(None),
    path: str | None = typer.Option(None),
    json_file: Path | None = typer.Option(None, "--json"),
) -> None:
    """The gateway's cost: the same GET directly and through the gateway, same run."""
    from callcentre import bench_gateway as gateway_bench

    report = gateway_bench.run(direct_url, gateway_url, duration, concurrency, path=path or gateway_bench.DEFAULT_PATH,
                               rounds=rounds, workers=workers, upstream=upstream)
    console.print(gateway_bench.format_report(report), highlight=False)
    if json_file is not None:
        json_file.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    app()
