"""Gateway throughput against calling a service directly: the same trivial GET, the same worker counts, the
same run. Prints figures; asserts nothing.

    python -m callcentre.bench_gateway [--duration 10] [--concurrency 32] [--workers 1]
        [--direct-url URL --gateway-url URL --path /api/v1/...]

Without URLs it starts its own upstream (a FastAPI app with the kernel's request middleware and identity check,
the shape of a real service's cheapest endpoint) and a gateway in front of it, on free 127.0.0.1 ports, and
stops them afterwards. Direct requests carry a signed identity header (as the gateway would add); gateway
requests carry a staff bearer token. Rounds alternate direct and gateway so background load hits both alike.

Against a running stack (URLs given), raise the gateway's per-principal rate limit first (e.g.
GATEWAY_RATE_LIMIT_PRINCIPAL=100000000/hour), or most gateway requests are 429s; secrets come from
CALLCENTRE_IDENTITY_SECRET / CALLCENTRE_JWT_SECRET (the local stack keeps them in DATA_DIR/secrets.json).

The load generator is a lean HTTP/1.1 client (asyncio protocol + httptools, keep-alive connections): a
general-purpose client would itself be the bottleneck on a small machine and flatten the difference."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any
from urllib.parse import urlsplit

import httptools
import httpx

from callcentre.stack import free_port
from services.auth import CurrentPrincipal, Principal, issue_staff_token, sign_identity
from services.httpserver import HTTP_PROTOCOL

BENCH_IDENTITY_SECRET = "bench-identity-secret-0123456789abcdef"
BENCH_JWT_SECRET = "bench-jwt-secret-0123456789abcdef0123"
DEFAULT_PATH = "/api/v1/practices/A81001"


# ---------------------------------------------------------------------------------------------- the upstream

def build_bench_upstream():  # noqa: ANN201 - a FastAPI app (imported lazily: the CLI need not load FastAPI)
    """A stand-in service: kernel request middleware (request id, JSON access log, metrics) and the identity
    check every real endpoint does, answering a small JSON document."""
    from fastapi import FastAPI
    from fastapi.responses import ORJSONResponse

    from services.accesslog import AccessLog
    from services.app import RequestContextMiddleware
    from services.auth import IdentityVerifier
    from services.logging import configure_logging

    secret = os.environ.get("BENCH_IDENTITY_SECRET", BENCH_IDENTITY_SECRET)
    configure_logging("bench-upstream")
    app = FastAPI(default_response_class=ORJSONResponse, openapi_url=None)
    app.state.identity_verifier = IdentityVerifier(secret)
    app.add_middleware(RequestContextMiddleware, service="bench-upstream",
                       access_log=AccessLog(True, "INFO", "bench-upstream", "services.app"))

    @app.get("/api/v1/practices/{ods}")
    async def practice(ods: str, caller: CurrentPrincipal) -> dict[str, Any]:
        return {"ods_code": ods, "name": "Benchmark Surgery", "pcn": "BENCH-PCN", "caller_role": caller.role}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> dict[str, str]:
        return {"status": "ready"}

    return app


_BARE_BODY = b'{"ods_code":"A81001","name":"Benchmark Surgery","pcn":"BENCH-PCN"}'


async def bare_upstream(scope, receive, send) -> None:  # noqa: ANN001 - ASGI
    """The cheapest possible upstream (no framework, no identity check): shows the gateway's own cost."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(_BARE_BODY)).encode())]})
    await send({"type": "http.response.body", "body": _BARE_BODY})


# ---------------------------------------------------------------------------------------------- load generator

class _Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[int] | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self._finish(exc=ConnectionError("bad response"))

    def on_message_complete(self) -> None:
        self._finish(status=self.parser.get_status_code())

    def connection_lost(self, exc: Exception | None) -> None:
        self._finish(exc=ConnectionError("connection lost"))

    def _finish(self, status: int = 0, exc: Exception | None = None) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            if exc is not None:
                waiter.set_exception(exc)
            else:
                waiter.set_result(status)

    async def request(self, raw: bytes) -> int:
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(raw)  # type: ignore[union-attr]
        return await self.waiter


async def _load(url: str, path: str, headers: dict[str, str], duration: float, concurrency: int) -> dict[str, Any]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    raw = (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
           + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n").encode()
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    counts = {"ok": 0, "failed": 0}
    statuses: dict[int, int] = {}
    stop_at = time.perf_counter() + duration

    async def worker() -> None:
        connection: _Connection | None = None
        while time.perf_counter() < stop_at:
            if connection is None or connection.transport is None or connection.transport.is_closing():
                try:
                    _, connection = await loop.create_connection(_Connection, host, port)
                except OSError:
                    counts["failed"] += 1
                    await asyncio.sleep(0.01)
                    continue
            began = time.perf_counter()
            try:
                status = await connection.request(raw)
            except ConnectionError:
                counts["failed"] += 1
                connection = None
                continue
            latencies.append(time.perf_counter() - began)
            counts["ok" if status == 200 else "failed"] += 1
            statuses[status] = statuses.get(status, 0) + 1
        if connection is not None and connection.transport is not None:
            connection.transport.close()

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - began
    latencies.sort()

    def pct(p: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000, 2) if latencies else 0.0

    return {"requests_per_second": round(counts["ok"] / elapsed, 1), "ok": counts["ok"], "failed": counts["failed"],
            "p50_ms": pct(0.50), "p99_ms": pct(0.99), "statuses": statuses}


def _measure(url: str, path: str, headers: dict[str, str], duration: float, concurrency: int) -> dict[str, Any]:
    try:
        import uvloop

        return uvloop.run(_load(url, path, headers, duration, concurrency))
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        return asyncio.run(_load(url, path, headers, duration, concurrency))


# ---------------------------------------------------------------------------------------------- processes

def _wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: process exited with {proc.returncode}")
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not become healthy")


def _start_stack(workers: int, upstream: str) -> tuple[str, str, list[subprocess.Popen[bytes]]]:
    upstream_port, gateway_port = free_port(), free_port()
    upstream_url, gateway_url = f"http://127.0.0.1:{upstream_port}", f"http://127.0.0.1:{gateway_port}"
    env = {**os.environ, "BENCH_IDENTITY_SECRET": BENCH_IDENTITY_SECRET,
           "CALLCENTRE_IDENTITY_SECRET": BENCH_IDENTITY_SECRET, "CALLCENTRE_JWT_SECRET": BENCH_JWT_SECRET,
           "GATEWAY_PORT": str(gateway_port), "GATEWAY_WORKERS": str(workers),
           "GATEWAY_BOOKING_URL": upstream_url, "GATEWAY_REGISTRY_URL": upstream_url, "GATEWAY_DESK_URL": upstream_url,
           # The limiter still runs on every request; the limit is just out of reach.
           "GATEWAY_RATE_LIMIT_PRINCIPAL": "100000000/hour"}
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "uvicorn",
             *(["callcentre.bench_gateway:build_bench_upstream", "--factory"] if upstream == "service"
               else ["callcentre.bench_gateway:bare_upstream"]),
             "--host", "127.0.0.1", "--port", str(upstream_port), "--workers", str(workers), "--loop", "uvloop",
             "--http", HTTP_PROTOCOL, "--no-access-log", "--log-level", "warning"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        _wait_healthy(upstream_url, procs[-1])
        # Logs go to /dev/null, but they are still formatted: their cost is part of the gateway's.
        procs.append(subprocess.Popen([sys.executable, "-m", "gateway"], env=env, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))
        _wait_healthy(gateway_url, procs[-1])
    except BaseException:
        _stop(procs)
        raise
    return upstream_url, gateway_url, procs


def _cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and its direct children (uvicorn's workers), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")

    def one(stat: str) -> tuple[int, float]:
        fields = stat[stat.rindex(")") + 2:].split()
        return int(fields[1]), (int(fields[11]) + int(fields[12])) / tick  # ppid, utime + stime

    total = 0.0
    try:
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid, seconds = one(f.read())
            except OSError:
                continue
            if int(entry) == pid or ppid == pid:
                total += seconds
    except OSError:  # no /proc: no CPU figures
        return 0.0
    return total


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in reversed(procs):
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


# ---------------------------------------------------------------------------------------------- the benchmark

def run(direct_url: str | None, gateway_url: str | None, duration: float = 10.0, concurrency: int = 32, *,
        path: str = DEFAULT_PATH, rounds: int = 3, workers: int = 1, identity_secret: str | None = None,
        jwt_secret: str | None = None, warmup: float = 1.0, upstream: str = "service") -> dict[str, Any]:
    """Measure `rounds` alternating runs of `duration / rounds` seconds each against the service directly and
    through the gateway; return the median figures and gateway/direct ratio. With both URLs None, start a
    benchmark upstream and a gateway (each with `workers` workers) and stop them afterwards; `upstream` is
    "service" (kernel middleware + identity check, like a real service's cheapest endpoint) or "bare" (a raw
    ASGI app: the gateway's own cost shows up in full)."""
    procs: list[subprocess.Popen[bytes]] = []
    if direct_url is None and gateway_url is None:
        direct_url, gateway_url, procs = _start_stack(workers, upstream)
        identity_secret = identity_secret or BENCH_IDENTITY_SECRET
        jwt_secret = jwt_secret or BENCH_JWT_SECRET
    from gateway.settings import DEV_JWT_SECRET  # the gateway's defaults match the local stack's
    from services.settings import DEV_SECRET

    identity_secret = identity_secret or os.environ.get("CALLCENTRE_IDENTITY_SECRET", DEV_SECRET)
    jwt_secret = jwt_secret or os.environ.get("CALLCENTRE_JWT_SECRET", DEV_JWT_SECRET)
    ttl = int(duration * 2 + warmup * 4 + 300)
    direct_headers = {"X-Callcentre-Identity": sign_identity(Principal("bench", "agent"), identity_secret, ttl)}
    gateway_headers = {"Authorization": f"Bearer {issue_staff_token('bench', 'agent', jwt_secret, ttl)}"}
    rounds = max(1, rounds)
    slice_seconds = max(0.5, duration / rounds)
    results: dict[str, list[dict[str, Any]]] = {"direct": [], "gateway": []}
    targets = [("direct", direct_url, direct_headers), ("gateway", gateway_url, gateway_headers)]
    # CPU seconds spent per request by each process we started: (upstream, gateway) per target.
    cpu: dict[str, list[float]] = {"direct": [0.0, 0.0, 0], "gateway": [0.0, 0.0, 0]}
    try:
        for name, url, headers in targets:
            if url is not None and warmup > 0:
                _measure(url, path, headers, warmup, concurrency)
        for _ in range(rounds):
            for name, url, headers in targets:
                if url is not None:
                    before = [_cpu_seconds(p.pid) for p in procs]
                    figures = _measure(url, path, headers, slice_seconds, concurrency)
                    results[name].append(figures)
                    if procs:
                        after = [_cpu_seconds(p.pid) for p in procs]
                        cpu[name][0] += after[0] - before[0]
                        cpu[name][1] += after[1] - before[1]
                        cpu[name][2] += figures["ok"]
    finally:
        _stop(procs)

    def median(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
        if not runs:
            return None
        return {
            "requests_per_second": round(statistics.median(r["requests_per_second"] for r in runs), 1),
            "p50_ms": round(statistics.median(r["p50_ms"] for r in runs), 2),
            "p99_ms": round(statistics.median(r["p99_ms"] for r in runs), 2),
            "failed": sum(r["failed"] for r in runs),
            "statuses": {str(k): sum(r["statuses"].get(k, 0) for r in runs) for k in sorted(
                {k for r in runs for k in r["statuses"]})},
            "rounds": [r["requests_per_second"] for r in runs],
        }

    direct, through = median(results["direct"]), median(results["gateway"])
    ratio = None
    if direct and through and direct["requests_per_second"]:
        ratio = round(through["requests_per_second"] / direct["requests_per_second"], 3)
    if procs:
        for name, figures in (("direct", direct), ("gateway", through)):
            upstream_cpu, gateway_cpu, requests = cpu[name]
            if figures and requests:
                figures["upstream_cpu_us_per_request"] = round(upstream_cpu / requests * 1e6, 1)
                figures["gateway_cpu_us_per_request"] = round(gateway_cpu / requests * 1e6, 1)
    return {"path": path, "duration_seconds": duration, "concurrency": concurrency, "workers": workers,
            "started_own_stack": bool(procs), "upstream": upstream if procs else direct_url, "direct": direct, "gateway": through, "gateway_to_direct": ratio}


def format_report(report: dict[str, Any]) -> str:
    lines = [f"GET {report['path']}  upstream {report['upstream']}  concurrency {report['concurrency']}  "
             f"workers {report['workers']}  {report['duration_seconds']} s"]
    for name in ("direct", "gateway"):
        figures = report.get(name)
        if figures:
            lines.append(f"  {name:8s} {figures['requests_per_second']:>9.1f} req/s  p50 {figures['p50_ms']:.2f} ms  "
                         f"p99 {figures['p99_ms']:.2f} ms  rounds {figures['rounds']}  statuses {figures['statuses']}")
            if "gateway_cpu_us_per_request" in figures:
                lines.append(f"           CPU per request: upstream {figures['upstream_cpu_us_per_request']} us, "
                             f"gateway {figures['gateway_cpu_us_per_request']} us")
    if report.get("gateway_to_direct") is not None:
        lines.append(f"  gateway keeps {report['gateway_to_direct'] * 100:.1f}% of direct throughput")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--direct-url")
    parser.add_argument("--gateway-url")
    parser.add_argument("--path", default=DEFAULT_PATH)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--upstream", choices=("service", "bare"), default="service",
                        help="the upstream started when no URLs are given")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    report = run(args.direct_url, args.gateway_url, args.duration, args.concurrency, path=args.path,
                 rounds=args.rounds, workers=args.workers, upstream=args.upstream)
    print(json.dumps(report, indent=2) if args.json else format_report(report))


if __name__ == "__main__":
    main()
