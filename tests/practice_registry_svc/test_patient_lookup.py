"""Patient lookup by staff: forgiving matching, ambiguity, clear errors, an audit event for every lookup, and
no NHS number or name in the service's logs."""

from __future__ import annotations

import io
import logging

from structlog.stdlib import ProcessorFormatter

from tests.practice_registry_svc.conftest import Registry
from tests.practice_registry_svc.support import make_pcn, make_practice, valid_nhs_numbers, with_wrong_check_digit
from tests.support.apps import ADMIN, AGENT, SUPERVISOR, identity, practice

AUDIT = "registry.audit.recorded.v1"


async def test_lookup_matches_forgivingly_flags_ambiguity_and_audits_every_search(registry: Registry):
    client = registry.client
    await make_pcn(client, "PCN-NORTH")
    await make_practice(client, "A81001", name="Abbey Road Surgery", pcn="PCN-NORTH", phone="0113 496 0000",
                        notes_for_agents="Bloods before 11:00.")
    await make_practice(client, "B82001", name="Beech House")
    n = valid_nhs_numbers(5)
    a_rows = [
        {"nhs_number": n[0], "family": "O'Brien", "given": "Siobhán", "birth_date": "1980-05-01",
         "postcode": "LS1 4AP"},
        {"nhs_number": n[1], "family": "Núñez-García", "given": "Zoë", "birth_date": "1975-03-03"},
        {"nhs_number": n[2], "family": "Smith", "given": "John", "birth_date": "1990-01-01", "postcode": "LS2 9JT"},
    ]
    b_rows = [{"nhs_number": n[3], "family": "SMITH", "given": "Jane", "birth_date": "1990-01-01",
               "postcode": "LS6 1AA", "phone": "07700 900123", "gender": "female"}]
    for ods, rows in (("A81001", a_rows), ("B82001", b_rows)):
        uploaded = await client.put(f"/api/v1/practices/{ods}/patients", json=rows, headers=practice(ods))
        assert uploaded.status_code == 200 and uploaded.json()["rejected"] == []

    stream = io.StringIO()
    # The service's own log handler, as the kernel's configure_logging set it up (JSON, redacting).
    handler = next(h for h in logging.getLogger().handlers if isinstance(h.formatter, ProcessorFormatter))
    saved_stream, saved_level = handler.stream, logging.getLogger("httpx").level
    handler.stream = stream  # type: ignore[attr-defined]
    logging.getLogger("httpx").setLevel(logging.WARNING)  # the test client's own log line echoes the URL
    try:
        async def find(who=AGENT, **params):
            response = await client.get("/api/v1/patients", params=params, headers=who)
            assert response.status_code == 200, response.text
            return response.json()

        by_spaced = await find(nhs_number=f"{n[0][:3]} {n[0][3:6]} {n[0][6:]}")
        assert by_spaced["ambiguous"] is False and len(by_spaced["items"]) == 1
        match = by_spaced["items"][0]
        assert (match["nhs_number"], match["family"], match["given"], match["birth_date"]) == (
            n[0], "O'Brien", "Siobhán", "1980-05-01")
        assert match["practice"] == {"ods_code": "A81001", "name": "Abbey Road Surgery", "pcn": "PCN-NORTH",
                                     "status": "active", "phone": "0113 496 0000",
                                     "notes_for_agents": "Bloods before 11:00.", "opening_hours": None}
        assert (await find(nhs_number=n[0]))["items"] == by_spaced["items"]
        assert (await find(nhs_number=n[4]))["items"] == []  # valid but not registered anywhere

        for family in ("obrien", "O BRIEN", "o’brien", "O'Brien", " o-brien "):
            found = await find(family=family, birth_date="1980-05-01")
            assert [p["nhs_number"] for p in found["items"]] == [n[0]], family
        for family in ("nunez garcia", "NÚÑEZGARCÍA"):
            found = await find(family=family, birth_date="1975-03-03")
            assert [p["nhs_number"] for p in found["items"]] == [n[1]], family
        assert (await find(family="obrien", birth_date="1980-05-02"))["items"] == []

        both = await find(who=SUPERVISOR, family="smith", birth_date="1990-01-01")
        assert both["ambiguous"] is True
        assert {(p["nhs_number"], p["practice"]["ods_code"]) for p in both["items"]} == {
            (n[2], "A81001"), (n[3], "B82001")}
        narrowed = await find(who=ADMIN, family="Smith", birth_date="1990-01-01", postcode="ls29jt")
        assert narrowed["ambiguous"] is False and [p["nhs_number"] for p in narrowed["items"]] == [n[2]]
        for narrowing in ({"postcode": " LS6 1AA "}, {"given": "ja"}):
            found = await find(family="smith", birth_date="1990-01-01", **narrowing)
            assert [p["given"] for p in found["items"]] == ["Jane"], narrowing
        successful_lookups = 15

        refusals = [
            ({"nhs_number": with_wrong_check_digit(n[0])}, 422, "invalid_nhs_number"),
            ({"nhs_number": "12345"}, 422, "invalid_nhs_number"),
            ({"family": "smith"}, 422, "incomplete_query"),
            ({"birth_date": "1990-01-01", "postcode": "LS2 9JT"}, 422, "incomplete_query"),
            ({}, 422, "incomplete_query"),
            ({"family": "smith", "birth_date": "1990-02-30"}, 422, "invalid_birth_date"),
            ({"family": "smith", "birth_date": "01/01/1990"}, 422, "invalid_birth_date"),
            ({"nhs_number": n[0], "family": "smith", "birth_date": "1990-01-01"}, 422, "conflicting_query"),
        ]
        for params, status, code in refusals:
            response = await client.get("/api/v1/patients", params=params, headers=AGENT)
            assert (response.status_code, response.json()["code"]) == (status, code), params
            assert n[0] not in response.text  # the problem never echoes the NHS number searched for
        for caller in (practice("A81001"), identity("service")):
            refused = await client.get("/api/v1/patients", params={"nhs_number": n[0]}, headers=caller)
            assert refused.status_code == 403 and refused.json()["code"] == "forbidden_role"
        assert (await client.get("/api/v1/patients", params={"nhs_number": n[0]})).status_code == 401
    finally:
        handler.stream = saved_stream  # type: ignore[attr-defined]
        logging.getLogger("httpx").setLevel(saved_level)

    logs = stream.getvalue()
    assert logs.count('"patients.lookup"') == successful_lookups
    assert f"*******{n[0][-3:]}" in logs  # the searched NHS number appears only masked
    for secret in [*n, *(f"{x[:3]} {x[3:6]} {x[6:]}" for x in n), "O'Brien", "O\\u2019Brien", "obrien", "Siob",
                   "N\\u00fa\\u00f1ez", "nunez", "Zo\\u00eb", "Smith", "smith", "Jane", "John", "LS2 9JT", "ls29jt",
                   "1980-05-01"]:
        assert secret not in logs, secret

    audits = await registry.events(AUDIT)
    assert len(audits) == successful_lookups  # one per lookup; refused ones returned nothing and recorded nothing
    first = audits[0].data
    assert {k: first[k] for k in ("actor", "role", "on_behalf_of", "action", "target_kind", "target_id",
                                  "nhs_number", "query_kind", "result_count")} == {
        "actor": "agent1", "role": "agent", "on_behalf_of": "A81001", "action": "patient.lookup",
        "target_kind": "patient", "target_id": n[0], "nhs_number": n[0], "query_kind": "nhs_number",
        "result_count": 1}
    assert audits[0].subject_key == "A81001"
    not_found = audits[2].data
    assert (not_found["nhs_number"], not_found["result_count"], not_found["on_behalf_of"]) == (n[4], 0, None)
    by_name = audits[3].data
    assert (by_name["query_kind"], by_name["nhs_number"], by_name["on_behalf_of"]) == ("demographics", n[0], "A81001")
    ambiguous = audits[11].data
    assert (ambiguous["actor"], ambiguous["role"], ambiguous["result_count"]) == ("super1", "supervisor", 2)
    assert (ambiguous["nhs_number"], ambiguous["on_behalf_of"], ambiguous["target_id"]) == (None, None, None)
    assert audits[12].data["role"] == "admin" and audits[12].data["on_behalf_of"] == "A81001"
