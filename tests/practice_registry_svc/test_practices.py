"""Practices and PCNs: validation, duplicates, who may see and change what, and the snapshot events."""

from __future__ import annotations

from datetime import datetime, timedelta

from tests.practice_registry_svc.conftest import Registry
from tests.practice_registry_svc.support import make_pcn, make_practice
from tests.support.apps import ADMIN, AGENT, SUPERVISOR, identity, practice


async def test_practices_and_pcns_are_validated_listed_and_scoped(registry: Registry):
    client = registry.client
    north = await make_pcn(client, "pcn-north", "Northgate PCN")
    assert north["code"] == "PCN-NORTH"
    dup_pcn = await client.post("/api/v1/pcns", json={"code": "PCN-NORTH", "name": "again"}, headers=ADMIN)
    assert dup_pcn.status_code == 409 and dup_pcn.json()["code"] == "duplicate_pcn"
    for body, who, status in [({"code": "no spaces", "name": "x"}, ADMIN, 422),
                              ({"code": "P", "name": "x"}, ADMIN, 422), ({"code": "PCN-X", "name": "x"}, AGENT, 403)]:
        assert (await client.post("/api/v1/pcns", json=body, headers=who)).status_code == status
    await make_pcn(client, "U12345", "Riverside PCN")

    created = await make_practice(client, " a81001 ", name="Abbey Road Surgery", pcn="pcn-north",
                                  phone="0113 496 0000",
                                  opening_hours={"monday": [{"opens": "13:30", "closes": "18:00"},
                                                            {"opens": "08:00", "closes": "12:30"}]})
    assert created["ods_code"] == "A81001" and created["pcn"] == "PCN-NORTH"
    assert created["status"] == "active" and created["version"] == 1
    assert created["opening_hours"]["monday"][0] == {"opens": "08:00", "closes": "12:30"}  # kept in order
    created_at = datetime.fromisoformat(created["created_at"])  # London time, with its offset
    assert created_at.utcoffset() in (timedelta(0), timedelta(hours=1))
    await make_practice(client, "A81002", pcn="PCN-NORTH", name="Beech House Medical Centre")
    await make_practice(client, "B82001", pcn="U12345")
    await make_practice(client, "C83001")

    for bad in ["A8100", "A810012", "AB1234", "812345", "A8100X", "", 81001]:
        response = await client.post("/api/v1/practices", json={"ods_code": bad, "name": "Bad"}, headers=ADMIN)
        assert response.status_code == 422, bad
        assert response.json()["errors"][0]["loc"] == ["body", "ods_code"]
    overlapping = await client.post("/api/v1/practices", headers=ADMIN, json={
        "ods_code": "D84001", "name": "x", "opening_hours": {"monday": [{"opens": "08:00", "closes": "12:00"},
                                                                      {"opens": "11:00", "closes": "13:00"}]}})
    assert overlapping.status_code == 422
    assert (await client.post("/api/v1/practices", headers=ADMIN, json={
        "ods_code": "D84001", "name": "x", "opening_hours": {"monday": [{"opens": "8:00", "closes": "12:00"}]}})
    ).status_code == 422
    duplicate = await client.post("/api/v1/practices", json={"ods_code": "a81001", "name": "Again"}, headers=ADMIN)
    assert duplicate.status_code == 409 and duplicate.json()["code"] == "duplicate_practice"
    unknown_pcn = await client.post("/api/v1/practices", json={"ods_code": "D84001", "name": "x", "pcn": "PCN-NOPE"},
                                    headers=ADMIN)
    assert unknown_pcn.status_code == 422 and unknown_pcn.json()["code"] == "unknown_pcn"
    for who in (AGENT, SUPERVISOR, practice("D84001")):
        assert (await client.post("/api/v1/practices", json={"ods_code": "D84001", "name": "x"},
                                  headers=who)).status_code == 403
    assert (await client.post("/api/v1/practices", json={"ods_code": "D84001", "name": "x"})).status_code == 401

    members = (await client.get("/api/v1/pcns/pcn-north", headers=AGENT)).json()
    assert [m["ods_code"] for m in members["practices"]] == ["A81001", "A81002"]
    assert members["name"] == "Northgate PCN"
    assert (await client.get("/api/v1/pcns/PCN-NOPE", headers=AGENT)).status_code == 404
    pcns = (await client.get("/api/v1/pcns", headers=practice("A81001"))).json()
    assert [p["code"] for p in pcns["items"]] == ["PCN-NORTH", "U12345"]

    listed = (await client.get("/api/v1/practices", headers=AGENT)).json()
    assert [p["ods_code"] for p in listed["items"]] == ["A81001", "A81002", "B82001", "C83001"]
    by_pcn = (await client.get("/api/v1/practices", params={"pcn": "pcn-north"}, headers=AGENT)).json()
    assert [p["ods_code"] for p in by_pcn["items"]] == ["A81001", "A81002"]
    by_name = (await client.get("/api/v1/practices", params={"q": "beech"}, headers=AGENT)).json()
    assert [p["ods_code"] for p in by_name["items"]] == ["A81002"]
    by_code = (await client.get("/api/v1/practices", params={"q": "b82"}, headers=AGENT)).json()
    assert [p["ods_code"] for p in by_code["items"]] == ["B82001"]
    assert (await client.get("/api/v1/practices", params={"q": "%"}, headers=AGENT)).json()["items"] == []

    pages, cursor = [], None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/api/v1/practices", params=params, headers=AGENT)).json()
        pages.append([p["ods_code"] for p in page["items"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == [["A81001", "A81002", "B82001"], ["C83001"]]
    assert (await client.get("/api/v1/practices", params={"limit": 100000}, headers=AGENT)).status_code == 200
    assert (await client.get("/api/v1/practices", params={"cursor": "garbage!"}, headers=AGENT)).status_code == 422

    # A practice's key sees its own practice and nothing else.
    own = (await client.get("/api/v1/practices", headers=practice("A81002"))).json()
    assert [p["ods_code"] for p in own["items"]] == ["A81002"]
    assert (await client.get("/api/v1/practices/a81002", headers=practice("A81002"))).status_code == 200
    other = await client.get("/api/v1/practices/A81001", headers=practice("A81002"))
    assert other.status_code == 403 and other.json()["code"] == "other_practice"
    missing = await client.get("/api/v1/practices/Z99999", headers=AGENT)
    assert missing.status_code == 404 and missing.json()["code"] == "practice_not_found"
    assert (await client.get("/api/v1/practices/A81001", headers=identity("service"))).status_code == 403

    spec = (await client.get("/api/v1/openapi.json")).json()
    assert {"/api/v1/practices", "/api/v1/patients", "/api/v1/pcns/{code}"} <= set(spec["paths"])
    assert not any(path.startswith("/internal") for path in spec["paths"])  # the gateway publishes this spec

    created_events = await registry.events("registry.practice.created.v1")
    assert [e.data["ods_code"] for e in created_events] == ["A81001", "A81002", "B82001", "C83001"]
    first = created_events[0]
    assert first.subject_key == "A81001" and first.producer == "practice-registry-svc"
    assert first.data == {"ods_code": "A81001", "name": "Abbey Road Surgery", "pcn": "PCN-NORTH", "status": "active",
                          "phone": "0113 496 0000", "address": None, "notes_for_agents": None, "version": 1}


async def test_codes_and_clock_times_take_ascii_digits_only(registry: Registry):
    # `\d` also matches other scripts' digits: "Z١٢٣٤٥" was created as a practice, "0٨:00" stored as a time.
    client = registry.client
    for ods in ("Z١٢٣٤٥", "A8100５"):
        response = await client.post("/api/v1/practices", json={"ods_code": ods, "name": "Digits"}, headers=ADMIN)
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["loc"] == ["body", "ods_code"]
    await make_practice(client, "A81001")
    hours = {"monday": [{"opens": "0٨:00", "closes": "17:00"}]}
    patched = await client.patch("/api/v1/practices/A81001", json={"opening_hours": hours}, headers=ADMIN)
    assert patched.status_code == 422, patched.text
    listed = (await client.get("/api/v1/practices", headers=ADMIN)).json()["items"]
    assert [(p["ods_code"], p["opening_hours"], p["version"]) for p in listed] == [("A81001", None, 1)]


async def test_who_may_change_a_practice_and_what_each_change_publishes(registry: Registry):
    client = registry.client
    await make_pcn(client, "PCN-NORTH")
    await make_pcn(client, "PCN-RIVER")
    await make_practice(client, "A81001", pcn="PCN-NORTH")
    await make_practice(client, "A81002")
    path = "/api/v1/practices/A81001"

    own = await client.patch(path, headers=practice("A81001"), json={
        "notes_for_agents": "Bloods before 11:00 only.", "phone": "0113 496 0001", "address": "1 High Street",
        "opening_hours": {"friday": [{"opens": "08:00", "closes": "18:30"}]}})
    assert own.status_code == 200, own.text
    assert own.json()["notes_for_agents"] == "Bloods before 11:00 only." and own.json()["version"] == 2

    for fields in ({"status": "suspended"}, {"name": "Renamed"}, {"pcn": "PCN-RIVER"},
                   {"status": "suspended", "phone": "0113 496 0002"}):
        refused = await client.patch(path, headers=practice("A81001"), json=fields)
        assert refused.status_code == 403 and refused.json()["code"] == "field_not_allowed", fields
    other = await client.patch(path, headers=practice("A81002"), json={"notes_for_agents": "not mine"})
    assert other.status_code == 403 and other.json()["code"] == "other_practice"
    for staff in (AGENT, SUPERVISOR):
        assert (await client.patch(path, headers=staff, json={"notes_for_agents": "x"})).status_code == 403
    assert (await client.patch(path, headers=ADMIN, json={"colour": "blue"})).status_code == 422
    assert (await client.patch(path, headers=ADMIN, json={"status": "closed"})).status_code == 422
    assert (await client.patch(path, headers=ADMIN, json={"name": None})).status_code == 422
    unknown = await client.patch(path, headers=ADMIN, json={"pcn": "PCN-NOPE"})
    assert unknown.status_code == 422 and unknown.json()["code"] == "unknown_pcn"
    assert (await client.patch("/api/v1/practices/Z99999", headers=ADMIN, json={"name": "x"})).status_code == 404

    by_admin = await client.patch(path, headers=ADMIN, json={"status": "suspended", "pcn": "PCN-RIVER",
                                                             "name": "Abbey Road Surgery"})
    assert by_admin.status_code == 200
    assert by_admin.json()["status"] == "suspended" and by_admin.json()["pcn"] == "PCN-RIVER"
    assert by_admin.json()["version"] == 3
    same_again = await client.patch(path, headers=ADMIN, json={"status": "suspended"})
    assert same_again.json()["version"] == 3  # nothing changed: no new version, no event
    cleared = await client.patch(path, headers=ADMIN, json={"pcn": None, "address": None})
    assert cleared.json()["pcn"] is None and cleared.json()["address"] is None and cleared.json()["version"] == 4
    assert (await client.get("/api/v1/pcns/PCN-NORTH", headers=AGENT)).json()["practices"] == []

    current = (await client.get(path, headers=practice("A81001"))).json()
    assert current["opening_hours"] == {"friday": [{"opens": "08:00", "closes": "18:30"}]}
    assert current["phone"] == "0113 496 0001"

    updates = await registry.events("registry.practice.updated.v1")
    assert [(e.data["version"], e.data["status"], e.data["pcn"]) for e in updates] == [
        (2, "active", "PCN-NORTH"), (3, "suspended", "PCN-RIVER"), (4, "suspended", None)]
    assert updates[0].data["notes_for_agents"] == "Bloods before 11:00 only."
    assert updates[1].data["name"] == "Abbey Road Surgery" and updates[1].subject_key == "A81001"
