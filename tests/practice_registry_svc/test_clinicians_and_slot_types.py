"""Clinicians and slot types: full-list replacement, the fixed vocabularies and rules, and their events."""

from __future__ import annotations

from typing import Any

from tests.practice_registry_svc.conftest import Registry
from tests.practice_registry_svc.support import make_practice
from tests.support.apps import ADMIN, AGENT, SUPERVISOR, practice

CLINICIANS = [
    {"clinician_id": "GP1", "name": "Dr Asha Patel", "role": "gp", "gender": "female"},
    {"clinician_id": "ANP1", "name": "Jo Carter", "role": "anp"},
    {"clinician_id": "MH1", "name": "Sam Lee", "role": "mental_health", "gender": "male"},
]
ROUTINE = {"code": "GP-ROUTINE", "name": "Routine GP", "channel": "in_person", "bookable_by_centre": True,
           "max_days_ahead": 28, "min_notice_minutes": 60, "release": None, "shared_with_pcn": False}
URGENT = {"code": "GP-URGENT", "name": "On the day", "channel": "telephone", "bookable_by_centre": True,
          "max_days_ahead": 0, "min_notice_minutes": 0, "release": {"days_before": 0, "at_time": "08:00"},
          "shared_with_pcn": True}


def changed(base: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {**base, **fields}


async def test_clinicians_are_replaced_whole_with_a_fixed_role_vocabulary(registry: Registry):
    client = registry.client
    await make_practice(client, "A81001")
    await make_practice(client, "A81002")
    path = "/api/v1/practices/A81001/clinicians"

    put = await client.put(path, json=CLINICIANS, headers=practice("A81001"))
    assert put.status_code == 200, put.text
    assert [c["clinician_id"] for c in put.json()] == ["GP1", "ANP1", "MH1"]
    assert put.json()[1]["gender"] is None
    assert (await client.get(path, headers=AGENT)).json() == put.json()
    assert (await client.get(path, headers=practice("A81001"))).json() == put.json()

    for bad in ([changed(CLINICIANS[0], role="doctor")], [changed(CLINICIANS[0], role="GP")],
                [changed(CLINICIANS[0], gender="f")], [changed(CLINICIANS[0], name="")],
                [{"clinician_id": "X", "role": "gp"}], [changed(CLINICIANS[0], clinician_id="has space")]):
        assert (await client.put(path, json=bad, headers=ADMIN)).status_code == 422, bad
    repeated = await client.put(path, json=[CLINICIANS[0], changed(CLINICIANS[1], clinician_id="GP1")], headers=ADMIN)
    assert repeated.status_code == 422 and repeated.json()["code"] == "duplicate_clinician_id"
    for who in (AGENT, SUPERVISOR):
        assert (await client.put(path, json=CLINICIANS, headers=who)).status_code == 403
    assert (await client.put(path, json=CLINICIANS, headers=practice("A81002"))).status_code == 403
    assert (await client.get(path, headers=practice("A81002"))).status_code == 403
    assert (await client.put("/api/v1/practices/Z99999/clinicians", json=CLINICIANS, headers=ADMIN)).status_code == 404
    assert len((await client.get(path, headers=AGENT)).json()) == 3  # refused changes changed nothing

    assert (await client.put(path, json=CLINICIANS, headers=ADMIN)).status_code == 200  # same list: no event
    replaced = await client.put(path, json=CLINICIANS[:1], headers=ADMIN)
    assert [c["clinician_id"] for c in replaced.json()] == ["GP1"]
    assert (await client.put(path, json=[], headers=ADMIN)).json() == []

    events = await registry.events("registry.clinicians.replaced.v1")
    assert [(e.data["version"], len(e.data["clinicians"])) for e in events] == [(2, 3), (3, 1), (4, 0)]
    assert events[0].data["clinicians"][2] == {"clinician_id": "MH1", "name": "Sam Lee", "role": "mental_health",
                                               "gender": "male"}
    assert all(e.subject_key == "A81001" and e.data["ods_code"] == "A81001" for e in events)
    practice_now = (await client.get("/api/v1/practices/A81001", headers=AGENT)).json()
    assert practice_now["version"] == 4  # one counter per practice across all its events


async def test_slot_types_are_validated_and_published_with_their_rules(registry: Registry):
    client = registry.client
    await make_practice(client, "A81001")
    path = "/api/v1/practices/A81001/slot-types"

    put = await client.put(path, json=[ROUTINE, URGENT], headers=practice("A81001"))
    assert put.status_code == 200, put.text
    assert put.json() == [ROUTINE, URGENT]
    assert (await client.get(path, headers=SUPERVISOR)).json() == [ROUTINE, URGENT]
    no_pcn_flag = {k: v for k, v in ROUTINE.items() if k not in ("shared_with_pcn", "release")}
    assert (await client.put(path, json=[no_pcn_flag], headers=ADMIN)).json()[0]["shared_with_pcn"] is False
    assert (await client.put(path, json=[ROUTINE, URGENT], headers=ADMIN)).status_code == 200

    bad_rows = [
        changed(ROUTINE, max_days_ahead=-1), changed(ROUTINE, min_notice_minutes=-5),
        changed(ROUTINE, max_days_ahead=1.5), changed(ROUTINE, max_days_ahead="7"),
        changed(ROUTINE, bookable_by_centre="yes"), changed(ROUTINE, channel="carrier_pigeon"),
        changed(URGENT, release={"days_before": 0, "at_time": "8:00"}),
        changed(URGENT, release={"days_before": 0, "at_time": "24:00"}),
        changed(URGENT, release={"days_before": 0, "at_time": "08:60"}),
        changed(URGENT, release={"days_before": 0, "at_time": "08:00:00"}),
        changed(URGENT, release={"days_before": -1, "at_time": "08:00"}),
        changed(URGENT, release={"at_time": "08:00"}),
        changed(ROUTINE, code=""), changed(ROUTINE, name=""), {k: v for k, v in ROUTINE.items() if k != "channel"},
    ]
    for bad in bad_rows:
        response = await client.put(path, json=[bad], headers=ADMIN)
        assert response.status_code == 422, bad
    repeated = await client.put(path, json=[ROUTINE, changed(URGENT, code="GP-ROUTINE")], headers=ADMIN)
    assert repeated.status_code == 422 and repeated.json()["code"] == "duplicate_slot_type"
    assert (await client.put(path, json=[ROUTINE], headers=AGENT)).status_code == 403
    assert (await client.put(path, json=[ROUTINE], headers=practice("B82001"))).status_code == 403
    assert (await client.get(path, headers=practice("A81001"))).json() == [ROUTINE, URGENT]

    events = await registry.events("registry.slot_types.replaced.v1")
    assert [[s["code"] for s in e.data["slot_types"]] for e in events] == [
        ["GP-ROUTINE", "GP-URGENT"], ["GP-ROUTINE"], ["GP-ROUTINE", "GP-URGENT"]]
    assert [e.data["version"] for e in events] == [2, 3, 4]
    assert events[0].data["slot_types"][1] == {
        "code": "GP-URGENT", "name": "On the day", "channel": "telephone", "bookable_by_centre": True,
        "max_days_ahead": 0, "min_notice_minutes": 0, "release": {"days_before": 0, "at_time": "08:00:00"},
        "shared_with_pcn": True}
