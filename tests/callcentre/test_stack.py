"""The local stack runner trusts a health check only when its own child is the one listening."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from callcentre.stack import Child, _bindable, _ephemeral_ports, _wait_for_http, free_port


def _http_server(port: int) -> list[str]:
    return [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]


def _squat(port: int) -> subprocess.Popen[bytes]:
    """Another process serving HTTP on the port, already answering when this returns."""
    squatter = subprocess.Popen(_http_server(port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/", timeout=1).status_code == 200:
                return squatter
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                squatter.kill()
                raise
            time.sleep(0.1)


def _child(tmp_path: Path, argv: list[str], port: int) -> Child:
    return Child("svc", argv, {}, tmp_path / "svc.log", tmp_path / "svc.pid", f"http://127.0.0.1:{port}/")


def test_a_child_that_answers_on_its_port_is_healthy(tmp_path: Path) -> None:
    port = free_port()
    child = _child(tmp_path, _http_server(port), port)
    child.start()
    try:
        _wait_for_http(child, time.monotonic() + 30)
    finally:
        child.proc.kill()  # type: ignore[union-attr]
        child.proc.wait()  # type: ignore[union-attr]


def test_another_process_answering_on_the_port_is_not_taken_for_the_child(tmp_path: Path) -> None:
    port = free_port()
    squatter = _squat(port)
    # A child that never listens: only the squatter can answer the health check.
    child = _child(tmp_path, [sys.executable, "-c", "import time; time.sleep(60)"], port)
    try:
        child.start()
        with pytest.raises(SystemExit, match="did not become healthy"):
            _wait_for_http(child, time.monotonic() + 3)
    finally:
        for proc in (squatter, child.proc):
            if proc is not None:
                proc.kill()
                proc.wait()


def test_a_child_that_cannot_bind_is_reported_as_exited(tmp_path: Path) -> None:
    port = free_port()
    squatter = _squat(port)
    child = _child(tmp_path, _http_server(port), port)  # "Address already in use": exits
    try:
        child.start()
        with pytest.raises(SystemExit, match="exited during start-up"):
            _wait_for_http(child, time.monotonic() + 20)
    finally:
        for proc in (squatter, child.proc):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()


def test_a_free_port_is_bindable_and_outside_the_kernels_ephemeral_range():
    """Outgoing connections take their source ports from the ephemeral range: a port chosen there could be taken
    between choosing it and the server binding it."""
    low, high = _ephemeral_ports()
    for _ in range(50):
        port = free_port()
        assert not low <= port <= high, port
        assert _bindable(port)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        assert free_port(busy) != busy  # a preferred port in use is not given
