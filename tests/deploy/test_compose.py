"""deploy/compose.yaml without Docker (no `docker compose config` here): parsed as YAML and checked for the
properties people rely on when they run the stack with Docker."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import ROOT, SERVICES

COMPOSE = ROOT / "deploy" / "compose.yaml"
ENV_EXAMPLE = ROOT / "deploy" / ".env.example"
PINNED_BY_DIGEST = re.compile(r"^[\w.\-/]+:[\w.\-]+@sha256:[0-9a-f]{64}$")
REQUIRED_VARIABLE = re.compile(r"\$\{([A-Z_]+):\?[^}]*\}")
MIGRATIONS = {"practice-registry-svc": "registry-migrate", "booking-svc": "booking-migrate",
              "agent-desk-svc": "desk-migrate"}
DATABASES = {"practice-registry-svc": "registry", "booking-svc": "booking", "agent-desk-svc": "desk"}


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def test_infrastructure_is_pinned_and_healthchecked(services: dict[str, dict[str, Any]]) -> None:
    nats, postgres = services["nats"], services["postgres"]
    for name, svc in (("nats", nats), ("postgres", postgres)):
        assert PINNED_BY_DIGEST.match(svc["image"]), f"{name} image is not pinned by tag and digest"
        assert svc["healthcheck"]["test"], f"{name} has no healthcheck"
    assert nats["image"].startswith("nats:") and "-js" in nats["command"]
    store = nats["command"][nats["command"].index("--store_dir") + 1]
    assert any(v.endswith(":" + store) for v in nats["volumes"]), "the JetStream store must be on a volume"
    assert "js-enabled-only" in " ".join(nats["healthcheck"]["test"])
    assert postgres["image"].startswith("postgres:16")
    assert "127.0.0.1" in postgres["healthcheck"]["test"], "the readiness check must go over TCP"
    assert "./postgres-init:/docker-entrypoint-initdb.d:ro" in postgres["volumes"]
    assert postgres["environment"]["SERVICE_DATABASES"].split() == list(DATABASES.values())
    assert (ROOT / "deploy" / "postgres-init" / "10-service-databases.sh").exists()


def test_every_service_waits_for_its_migration_and_is_hardened(services: dict[str, dict[str, Any]]) -> None:
    for package, name, prefix, port, database in SERVICES:
        svc = services[name]
        assert svc["command"] == ["python", "-m", package, "serve"]
        assert svc["healthcheck"]["test"] == ["CMD", "callcentre-healthcheck"]
        env = svc["environment"]
        assert env[f"{prefix}HOST"] == "0.0.0.0" and env[f"{prefix}PORT"] == str(port)
        assert svc["read_only"] is True and svc["user"] == "10001:10001" and svc["cap_drop"] == ["ALL"]
        assert svc["tmpfs"] == ["/tmp"] and "no-new-privileges:true" in svc["security_opt"]
        assert svc["build"]["dockerfile"] == "deploy/Dockerfile" and svc["build"]["context"] == ".."
        if database is None:
            continue
        migrate = services[MIGRATIONS[name]]
        assert migrate["command"] == ["python", "-m", package, "migrate"]
        assert migrate["restart"] == "no" and migrate["healthcheck"] == {"disable": True}
        assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert migrate["image"] == svc["image"]
        assert svc["depends_on"][MIGRATIONS[name]]["condition"] == "service_completed_successfully"
        assert svc["depends_on"]["nats"]["condition"] == "service_healthy"
        db = DATABASES[name]
        url = f"postgresql+asyncpg://{db}:${{{db.upper()}_DB_PASSWORD}}@postgres:5432/{db}"
        assert env[f"{prefix}DATABASE_URL"] == url and migrate["environment"][f"{prefix}DATABASE_URL"] == url
        assert env["CALLCENTRE_NATS_URL"] == "nats://nats:4222"
    gateway = services["gateway"]
    for _, name, _, port, database in SERVICES:
        if database:
            assert gateway["depends_on"][name]["condition"] == "service_healthy"
    assert gateway["environment"]["GATEWAY_BOOKING_URL"] == "http://booking-svc:8102"
    assert gateway["environment"]["GATEWAY_REGISTRY_URL"] == "http://practice-registry-svc:8101"
    assert gateway["environment"]["GATEWAY_DESK_URL"] == "http://agent-desk-svc:8103"
    published = [name for name, svc in services.items() if svc.get("ports")]
    assert published == ["gateway"], "only the gateway is reachable from the host"


def test_secrets_come_only_from_the_env_file_and_the_example_holds_none() -> None:
    text = COMPOSE.read_text()
    services = yaml.safe_load(text)["services"]
    for name, svc in services.items():
        environment = svc.get("environment", {})
        for key, value in environment.items():
            if re.search(r"SECRET|PASSWORD", key):
                assert REQUIRED_VARIABLE.fullmatch(str(value)), f"{name}: {key} must be ${{{key}:?...}}, not a value"
    required = set(REQUIRED_VARIABLE.findall(text))
    example: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            example[key] = value
    assert required <= set(example), f"deploy/.env.example lacks {sorted(required - set(example))}"
    for key, value in example.items():
        if re.search(r"SECRET|PASSWORD", key):
            assert value == "", f".env.example must not carry a value for {key}"
    assert ".env" in (ROOT / "deploy" / ".gitignore").read_text().split()
