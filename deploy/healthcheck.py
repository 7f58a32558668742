#!/usr/bin/env python3
"""Docker HEALTHCHECK for whichever service the container runs (one image serves them all): find the
`python -m <package> serve` process, take that service's port the way its settings do (<PREFIX>PORT, then
CALLCENTRE_PORT, then the default) and ask GET /healthz on the loopback. A one-shot `migrate` counts as
healthy. Kubernetes does not use this: its probes call /healthz and /readyz directly.

Usage: callcentre-healthcheck [--pid PID]   (--pid checks that process instead of searching /proc)
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

# package -> (environment prefix, default port); mirrors each service's Settings.
SERVICES = {
    "practice_registry_svc": ("REGISTRY_", 8101),
    "booking_svc": ("BOOKING_", 8102),
    "agent_desk_svc": ("DESK_", 8103),
    "gateway": ("GATEWAY_", 8000),
}


def command_of(pid: str) -> tuple[str, str] | None:
    """(package, subcommand) when the process runs `python -m <package> [subcommand]`."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return None
    for i, arg in enumerate(argv[:-1]):
        if arg == "-m" and argv[i + 1] in SERVICES:
            return argv[i + 1], argv[i + 2] if i + 2 < len(argv) else "serve"
    return None


def find_service(pid: str | None) -> tuple[str, str] | None:
    if pid is not None:
        return command_of(pid)
    for candidate in sorted((p for p in os.listdir("/proc") if p.isdigit()), key=int):
        found = command_of(candidate)
        if found is not None:
            return found
    return None


def port_for(package: str) -> int:
    prefix, default = SERVICES[package]
    for name in (f"{prefix}PORT", "CALLCENTRE_PORT"):
        value = os.environ.get(name) or os.environ.get(name.lower())
        if value:
            return int(value)
    return default


def main(argv: list[str]) -> int:
    pid = argv[argv.index("--pid") + 1] if "--pid" in argv else None
    found = find_service(pid)
    if found is None:
        print("no `python -m <service>` process found", file=sys.stderr)
        return 1
    package, command = found
    if command != "serve":
        return 0
    url = f"http://127.0.0.1:{port_for(package)}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=3) as response:  # noqa: S310 - fixed loopback URL
            return 0 if response.status == 200 else 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"{package}: {url} failed: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
