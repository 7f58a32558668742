"""The gateway as a real process (`python -m gateway`) in front of real fake-upstream processes on free ports."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import jwt
import pytest

from services.auth import issue_staff_token
from tests.support.natsserver import free_port

ROOT = Path(__file__).resolve().parents[2]
IDENTITY_SECRET = "gateway-test-identity-secret-0123456789"
JWT_SECRET = "gateway-test-jwt-secret-0123456789abcdef"
UPSTREAM_NAMES = ("booking", "registry", "desk")
OWN_KEY, OTHER_KEY = "pk_A81001_secret", "pk_B82002_secret"  # the fake registry's keys: A81001 and B82002


@dataclass
class Process:
    argv: list[str]
    port: int
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, ready_path: str = "/healthz", timeout: float = 20.0) -> Process:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv, cwd=ROOT, env={**os.environ, **self.env}, stdout=log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.argv} exited: {self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(self.url + ready_path, timeout=0.5).status_code < 500:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{self.argv} did not start: {self.log_path.read_text()[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_upstream(name: str, log_dir: Path, port: int | None = None) -> Process:
    port = port or free_port()
    return Process([sys.executable, "-m", "tests.gateway.fake_upstream", name, str(port), IDENTITY_SECRET], port,
                   log_dir / f"{name}-{port}.log").start(ready_path="/readyz")


def gateway_env(upstreams: dict[str, Process], **overrides: str) -> dict[str, str]:
    env = {
        "CALLCENTRE_IDENTITY_SECRET": IDENTITY_SECRET,
        "CALLCENTRE_JWT_SECRET": JWT_SECRET,
        "GATEWAY_BOOKING_URL": upstreams["booking"].url,
        "GATEWAY_REGISTRY_URL": upstreams["registry"].url,
        "GATEWAY_DESK_URL": upstreams["desk"].url,
        "GATEWAY_JWT_ALGORITHMS": '["HS256", "RS256"]',
        "GATEWAY_OIDC_ISSUER": f"{upstreams['desk'].url}/idp",
        "GATEWAY_API_KEY_CACHE_SECONDS": "1",
        "GATEWAY_API_KEY_NEGATIVE_CACHE_SECONDS": "0.5",
        "GATEWAY_UPSTREAM_TIMEOUT_SECONDS": "1",
        "GATEWAY_RATE_LIMIT_PRINCIPAL": "100000/minute",
        "GATEWAY_RATE_LIMIT_ANONYMOUS": "100000/minute",
        "GATEWAY_BREAKER_FAILURE_THRESHOLD": "3",
        "GATEWAY_BREAKER_RESET_SECONDS": "1",
        "GATEWAY_OPENAPI_CACHE_SECONDS": "300",
        "PYTHONUNBUFFERED": "1",
    }
    env.update({k.upper() if k.isupper() else f"GATEWAY_{k.upper()}": v for k, v in overrides.items()})
    return env


def start_gateway(upstreams: dict[str, Process], log_dir: Path, **overrides: str) -> Process:
    port = free_port()
    env = gateway_env(upstreams, **overrides)
    env["GATEWAY_PORT"] = str(port)
    return Process([sys.executable, "-m", "gateway"], port, log_dir / f"gateway-{port}.log", env).start()


def staff_token(role: str, subject: str | None = None, *, secret: str = JWT_SECRET, ttl: int = 600) -> str:
    return issue_staff_token(subject or f"{role}1", role, secret, ttl)


def bearer(role: str, subject: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {staff_token(role, subject)}"}


def practice_key(own: bool = True) -> dict[str, str]:
    return {"X-API-Key": OWN_KEY if own else OTHER_KEY}


def forged(claims: dict, key: str = JWT_SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=algorithm)


@pytest.fixture(scope="session")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gateway-logs")


@pytest.fixture(scope="session")
def upstreams(log_dir: Path) -> Iterator[dict[str, Process]]:
    started = {name: start_upstream(name, log_dir) for name in UPSTREAM_NAMES}
    yield started
    for process in started.values():
        process.stop()


@pytest.fixture(scope="session")
def gateway(upstreams: dict[str, Process], log_dir: Path) -> Iterator[Process]:
    process = start_gateway(upstreams, log_dir)
    yield process
    process.stop()


@pytest.fixture
async def client(gateway: Process) -> httpx.AsyncClient:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as http:
        yield http
