"""The whole centre as real processes: `callcentre up` in a temporary data dir, driven over HTTP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.natsserver import free_port

PROCESS_NAMES = ("nats", "gateway", "booking-svc", "practice-registry-svc", "agent-desk-svc")
ADMIN = ("e2e-admin", "e2e-admin-password-1")


@dataclass
class RunningStack:
    url: str
    data_dir: Path
    proc: subprocess.Popen[bytes]
    output: Path

    def pids(self) -> dict[str, int]:
        return {name: int((self.data_dir / "run" / f"{name}.pid").read_text()) for name in PROCESS_NAMES}

    def ports(self) -> dict[str, int]:
        return json.loads((self.data_dir / "run" / "ports.json").read_text())

    def admin_token(self) -> str:
        r = httpx.post(f"{self.url}/api/v1/auth/token", json={"username": ADMIN[0], "password": ADMIN[1]}, timeout=10)
        r.raise_for_status()
        return r.json()["access_token"]


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped) is gone for our purposes.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def start_stack(data_dir: Path, *, seed: bool, extra_env: dict[str, str] | None = None,
                timeout: float = 150) -> RunningStack:
    port = free_port()
    env = {**os.environ, "CALLCENTRE_ADMIN_USER": ADMIN[0], "CALLCENTRE_ADMIN_PASSWORD": ADMIN[1], **(extra_env or {})}
    output = data_dir.parent / f"{data_dir.name}-runner.log"
    log = open(output, "ab")
    argv = [sys.executable, "-m", "callcentre.cli", "up", "--gateway-port", str(port), "--data-dir", str(data_dir),
            "--any-ports"]
    if not seed:
        argv.append("--no-seed")
    proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"callcentre up exited with {proc.returncode}:\n{output.read_text()[-4000:]}")
        if "The call centre is up" in output.read_text(errors="replace"):
            return RunningStack(f"http://127.0.0.1:{port}", data_dir, proc, output)
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    raise AssertionError(f"callcentre up did not come up in {timeout}s:\n{output.read_text()[-4000:]}")


def stop_stack(stack: RunningStack) -> float:
    """SIGTERM the runner; returns how long it took for every child to be gone."""
    pids = stack.pids()
    started = time.monotonic()
    stack.proc.send_signal(signal.SIGTERM)
    stack.proc.wait(timeout=30)
    while any(pid_alive(p) for p in pids.values()) and time.monotonic() - started < 30:
        time.sleep(0.05)
    return time.monotonic() - started


@contextmanager
def running_stack(data_dir: Path, *, seed: bool, extra_env: dict[str, str] | None = None) -> Iterator[RunningStack]:
    """A started stack, stopped on the way out unless a test stopped it already."""
    running = start_stack(data_dir, seed=seed, extra_env=extra_env)
    try:
        yield running
    finally:
        if running.proc.poll() is None:
            stop_stack(running)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    with running_stack(tmp_path_factory.mktemp("e2e") / "var", seed=True) as running:
        yield running
