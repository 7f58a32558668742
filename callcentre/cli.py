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
) -> None:
    """Start NATS, migrate and start every service and the gateway, seed a demo region on first start."""
    from callcentre.seed import seed
    from callcentre.stack import Stack

    started = time.monotonic()
    stack = Stack(data_dir.resolve(), gateway_port)
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


if __name__ == "__main__":
    app()
