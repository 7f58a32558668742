"""Every event contract's JSON schema is pinned. A change that fails here is a breaking change unless it only
adds optional fields: publish a new version (a new class, `event_version = 2`) instead of editing the old one.
Regenerate after an intended additive change with UPDATE_SNAPSHOTS=1."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import services.contracts  # noqa: F401 - registers every contract
from services.events import CONTRACTS, STREAMS

SNAPSHOTS = Path(__file__).parent / "snapshots"
KERNEL_CONTRACTS = {s: c for s, c in CONTRACTS.items() if c.__module__.startswith("services.contracts.")}


def test_every_contract_has_a_versioned_subject_on_its_producers_stream():
    assert KERNEL_CONTRACTS, "no contracts registered"
    for subject, contract in KERNEL_CONTRACTS.items():
        prefix, *_middle, version = subject.split(".")
        assert prefix in STREAMS.values(), subject
        assert version == f"v{contract.event_version}", subject
        module_producer = contract.__module__.rsplit(".", 1)[1]
        assert module_producer == "audit" or module_producer == prefix, f"{subject} declared in {contract.__module__}"


def test_every_snapshot_belongs_to_a_contract():
    stale = {p.stem for p in SNAPSHOTS.glob("*.json")} - set(KERNEL_CONTRACTS)
    assert not stale, f"snapshots without a contract (a version was removed?): {sorted(stale)}"


@pytest.mark.parametrize("subject", sorted(KERNEL_CONTRACTS))
def test_contract_schema_matches_snapshot(subject: str):
    schema = KERNEL_CONTRACTS[subject].model_json_schema()
    path = SNAPSHOTS / f"{subject}.json"
    rendered = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        SNAPSHOTS.mkdir(exist_ok=True)
        path.write_text(rendered)
    assert path.exists(), f"no schema snapshot for {subject}: run with UPDATE_SNAPSHOTS=1 and commit it"
    assert json.loads(path.read_text()) == schema, (
        f"the schema of {subject} changed: if this breaks consumers, declare a new version instead")
