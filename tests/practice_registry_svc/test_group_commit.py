"""Lookups that arrive together are committed together with their audit records on PostgreSQL
(services.groupcommit): a burst gets exactly what one lookup at a time gives, each lookup audited once with its own
request id. SQLite (one at a time) and PostgreSQL."""

from __future__ import annotations

import asyncio

from tests.practice_registry_svc.conftest import Registry
from tests.practice_registry_svc.support import make_practice, valid_nhs_numbers
from tests.support.apps import identity, practice
from tests.support.groupcommit import batch_sizes, fallbacks

AUDIT = "registry.audit.recorded.v1"


async def test_a_burst_of_lookups_gets_what_one_at_a_time_gives_each_audited_once(registry: Registry):
    client = registry.client
    await make_practice(client, "A81001", name="Abbey Road Surgery")
    await make_practice(client, "B82001", name="Beech House")
    n = valid_nhs_numbers(12)
    for ods, numbers in (("A81001", n[:5]), ("B82001", n[5:10])):
        rows = [{"nhs_number": x, "family": f"Family{i}", "given": "Sam", "birth_date": "1980-05-01"}
                for i, x in enumerate(numbers)]
        assert (await client.put(f"/api/v1/practices/{ods}/patients", json=rows, headers=practice(ods))).status_code == 200
    sizes = batch_sizes(registry.app.state.lookups)
    fallen_back = fallbacks("lookups")
    before = len(await registry.events(AUDIT))

    def look(n: int, **params: str):  # noqa: ANN202
        return client.get("/api/v1/patients", params=params,
                          headers={**identity("agent", f"agent{n}"), "X-Request-ID": f"lookup-{n}"})

    requests = [look(i, nhs_number=x) for i, x in enumerate(n[:10])]
    requests += [look(10, nhs_number=n[10]),  # valid, registered nowhere
                 look(11, nhs_number=n[0]),  # the same patient twice at once
                 look(12, family="family1", birth_date="1980-05-01"),  # by demographics: matches A and B
                 look(13, nhs_number="9434765918")]  # not a valid NHS number: refused, not audited
    responses = await asyncio.gather(*requests)
    assert [r.status_code for r in responses] == [200] * 13 + [422]
    bodies = [r.json() for r in responses[:13]]
    for i in range(10):
        [match] = bodies[i]["items"]
        assert match["nhs_number"] == n[i] and match["family"] == f"Family{i % 5}"
        assert match["practice"]["ods_code"] == ("A81001" if i < 5 else "B82001")
        assert match["practice"]["opening_hours"] is None and bodies[i]["ambiguous"] is False
    assert bodies[10] == {"items": [], "ambiguous": False, "truncated": False}
    assert bodies[11] == bodies[0]
    assert bodies[12]["ambiguous"] is True and {m["nhs_number"] for m in bodies[12]["items"]} == {n[1], n[6]}

    audits = {e.correlation_id: e.data for e in (await registry.events(AUDIT))[before:]}
    assert sorted(audits) == sorted(f"lookup-{i}" for i in range(13))  # one each, the refused one none
    for i in range(10):
        assert {"actor": f"agent{i}", "role": "agent", "action": "patient.lookup", "nhs_number": n[i],
                "target_id": n[i], "query_kind": "nhs_number", "result_count": 1,
                "on_behalf_of": "A81001" if i < 5 else "B82001"}.items() <= audits[f"lookup-{i}"].items()
    assert {"nhs_number": n[10], "result_count": 0, "target_id": None}.items() <= audits["lookup-10"].items()
    assert {"query_kind": "demographics", "result_count": 2}.items() <= audits["lookup-12"].items()
    assert fallbacks("lookups") == fallen_back
    if registry.app.state.db.dialect == "postgresql":
        assert max(sizes) > 1, sizes
    else:
        assert sizes == []
