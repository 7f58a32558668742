"""Bad input through the gateway: oversized and malformed bodies, wrong types, hostile strings in every text
field, huge page sizes and names from real people. Whatever is refused is a 4xx problem+json and changes nothing
(read back to be sure); whatever is accepted comes back exactly as it was sent."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from callcentre.seed import synthetic_nhs_numbers
from tests.e2e.conftest import RunningStack, running_stack
from tests.e2e.databases import stack_databases

pytestmark = pytest.mark.e2e

PROBLEM_JSON = "application/problem+json"
MAX_BODY = 10 * 1024 * 1024
ODS = "Y90001"  # a seeded practice; its key acts for it
OTHER_ODS = "Y90002"

# Nothing may store these: JSON can carry both, no database keeps them as text.
NUL = "Smith\u0000'); --"
LONE_SURROGATE = "Smith\ud800"
TOO_LONG = "x" * 100_000
MUST_REFUSE = {"nul": NUL, "lone surrogate": LONE_SURROGATE, "too long": TOO_LONG}
# Fine as free text (a name, a note): stored and returned as sent, never interpreted.
HARMLESS = {
    "sql": "Robert'); DROP TABLE practices; --",
    "sql quote": "x' OR '1'='1",
    "script": "<script>alert('x')</script>",
    "rtl override": "Dr \u202eenoJ",
    "emoji": "Dr Patel \U0001f469\u200d\u2695\ufe0f",
    "astral": "\U0001d4d0\U0001d4f5\U0001d4ee\U0001d4f7",
    "format string": "%s%n%x{0}${jndi:ldap://x}",
    "path": "../../etc/passwd",
    "welsh": "Meddygfa Llanfairpwll Siân Llŵyd",
    "polish": "Przychodnia Łódź Żółć",
    "apostrophe": "O'Brien-D'Arcy",
}
HOSTILE = {**MUST_REFUSE, **HARMLESS}


def body_of(value: Any) -> bytes:
    # ensure_ascii: a lone surrogate travels as the escape "\ud800", as a client's JSON would carry it.
    return json.dumps(value, ensure_ascii=True).encode()


def assert_problem(response: httpx.Response, *statuses: int) -> dict:
    assert response.status_code in statuses, (response.status_code, response.text[:500])
    assert response.headers["content-type"].split(";")[0] == PROBLEM_JSON, response.headers["content-type"]
    problem = response.json()
    assert problem["status"] == response.status_code and isinstance(problem["code"], str)
    return problem


@pytest.fixture(scope="module", params=("sqlite", "postgresql"))
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    tmp = tmp_path_factory.mktemp(f"bad-input-{request.param}")
    with stack_databases(request.param, tmp) as database_env:
        # Hundreds of requests from one admin in seconds: the rate limiter is tested in tests/gateway.
        with running_stack(tmp / "var", seed=True,
                           extra_env={**database_env, "GATEWAY_RATE_LIMIT_PRINCIPAL": "1000000/minute"}) as running:
            yield running


@pytest.fixture(scope="module")
def admin(stack: RunningStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.url, timeout=60,
                      headers={"Authorization": f"Bearer {stack.admin_token()}"}) as client:
        yield client


@pytest.fixture(scope="module")
def demo(stack: RunningStack) -> dict:
    return json.loads((stack.data_dir / "demo.json").read_text())


@pytest.fixture(scope="module")
def practice_key(stack: RunningStack, demo: dict) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.url, timeout=60, headers={"X-API-Key": demo["api_keys"][ODS]}) as client:
        yield client


def send(client: httpx.Client, method: str, path: str, value: Any, **kwargs: Any) -> httpx.Response:
    return client.request(method, path, content=body_of(value), headers={"content-type": "application/json"},
                          **kwargs)


def practices(admin: httpx.Client) -> list[dict]:
    response = admin.get("/api/v1/practices", params={"limit": 500})
    assert response.status_code == 200, response.text
    return response.json()["items"]


def agents(admin: httpx.Client) -> list[dict]:
    response = admin.get("/api/v1/agents", params={"limit": 500})
    assert response.status_code == 200, response.text
    return response.json()["items"]


def read(admin: httpx.Client, path: str) -> Any:
    response = admin.get(path)
    assert response.status_code == 200, response.text
    return response.json()


# ---------------------------------------------------------------------------------------------- bodies

def test_oversized_bodies_are_413_and_change_nothing(admin: httpx.Client, practice_key: httpx.Client):
    before = practices(admin)
    too_big = b'{"ods_code": "Z99001", "name": "' + b"x" * MAX_BODY + b'"}'
    assert_problem(admin.post("/api/v1/practices", content=too_big,
                              headers={"content-type": "application/json"}), 413)

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit must hold while streaming too
        yield b'[{"nhs_number": "9990000018", "family": "'
        for _ in range(11):
            yield b"y" * (1024 * 1024)
        yield b'", "given": "A", "birth_date": "1965-11-13"}]'

    assert_problem(practice_key.put(f"/api/v1/practices/{ODS}/patients", content=chunks(),
                                    headers={"content-type": "application/json"}), 413)
    assert practices(admin) == before
    # The patient whose row was in the oversized upload still has the family name they had.
    found = read(admin, "/api/v1/patients?nhs_number=9990000018")["items"]
    assert [p["family"] for p in found] == ["Clarke"]


MALFORMED = [
    b"{not json", b'{"ods_code": "Z99002", "name": "Half', b"", b"null", b"true", b"42", b'"a string"',
    b"\xff\xfe\xfa", b'{"ods_code": "Z99002", "name": "Trailing"} {"x": 1}', b"[" * 100_000 + b"]" * 100_000,
    b'{"a":' * 50_000 + b"1" + b"}" * 50_000, b'{"ods_code": "Z99002", "name": NaN}',
    b'{"ods_code": "Z99002", "ods_code": "Z99003", "name": "Twice", "name": []}',
    b'{"ods_code": "Z99002", "name": "Digits", "version": ' + b"9" * 5000 + b"}",  # past Python's int parse limit
]


@pytest.mark.parametrize("method,path", [
    ("POST", "/api/v1/practices"), ("PATCH", f"/api/v1/practices/{ODS}"), ("POST", "/api/v1/pcns"),
    ("PUT", f"/api/v1/practices/{ODS}/clinicians"), ("PUT", f"/api/v1/practices/{ODS}/slot-types"),
    ("PUT", f"/api/v1/practices/{ODS}/patients"), ("PUT", f"/api/v1/rotas/{ODS}"), ("POST", "/api/v1/holds"),
    ("POST", "/api/v1/appointments"), ("POST", "/api/v1/agents"), ("POST", "/api/v1/callbacks"),
    ("POST", "/api/v1/calls"), ("POST", "/api/v1/auth/token"),
])
def test_malformed_json_is_a_4xx_problem_and_changes_nothing(admin: httpx.Client, method: str, path: str):
    before = (practices(admin), agents(admin), read(admin, f"/api/v1/practices/{ODS}"),
              read(admin, f"/api/v1/practices/{ODS}/clinicians"), read(admin, f"/api/v1/practices/{ODS}/slot-types"))
    for body in MALFORMED:
        for content_type in ("application/json", "text/plain"):
            response = admin.request(method, path, content=body, headers={"content-type": content_type})
            assert_problem(response, 400, 401, 409, 415, 422)
    assert (practices(admin), agents(admin), read(admin, f"/api/v1/practices/{ODS}"),
            read(admin, f"/api/v1/practices/{ODS}/clinicians"),
            read(admin, f"/api/v1/practices/{ODS}/slot-types")) == before


def test_wrong_types_are_422_and_change_nothing(admin: httpx.Client, practice_key: httpx.Client, demo: dict):
    before = (practices(admin), agents(admin), read(admin, f"/api/v1/practices/{ODS}/clinicians"))
    patient = demo["demo_patients"][0]["nhs_number"]
    clinicians, slot_types = f"/api/v1/practices/{ODS}/clinicians", f"/api/v1/practices/{ODS}/slot-types"
    cases: list[tuple[httpx.Client, str, str, Any]] = [
        (admin, "POST", "/api/v1/practices", {"ods_code": 99001, "name": "Numbers"}),
        (admin, "POST", "/api/v1/practices", {"ods_code": ["Z99001"], "name": "List"}),
        (admin, "POST", "/api/v1/practices", {"ods_code": "Z99001", "name": {"first": "x"}}),
        (admin, "POST", "/api/v1/practices", {"ods_code": "Z99001", "name": None}),
        (admin, "POST", "/api/v1/practices", {"ods_code": "Z99001", "name": True}),
        (admin, "POST", "/api/v1/practices", [{"ods_code": "Z99001", "name": "In a list"}]),
        (admin, "POST", "/api/v1/practices", {"ods_code": "Z99001", "name": "Extra", "admin": True}),
        (admin, "POST", "/api/v1/practices", {"ods_code": "Z99001", "name": "Hours", "opening_hours": []}),
        (admin, "PATCH", f"/api/v1/practices/{ODS}", {"status": 1}),
        (admin, "PATCH", f"/api/v1/practices/{ODS}", {"status": "closed-forever"}),
        (admin, "PATCH", f"/api/v1/practices/{ODS}", ["name", "x"]),
        (practice_key, "PUT", clinicians, {"clinician_id": "GP9", "name": "x", "role": "gp"}),
        (practice_key, "PUT", clinicians, [{"clinician_id": 9, "name": "x", "role": "gp"}]),
        (practice_key, "PUT", clinicians, [{"clinician_id": "GP9", "name": "x", "role": "wizard"}]),
        (practice_key, "PUT", slot_types, [{"code": "X", "name": "x", "channel": "video", "bookable_by_centre": "yes",
                                            "max_days_ahead": "5", "min_notice_minutes": 5.5}]),
        (practice_key, "PUT", slot_types, [{"code": "X", "name": "x", "channel": "video", "bookable_by_centre": True,
                                            "max_days_ahead": 10**30, "min_notice_minutes": -1}]),
        (practice_key, "PUT", f"/api/v1/practices/{ODS}/patients", {"nhs_number": patient}),
        (practice_key, "PUT", f"/api/v1/rotas/{ODS}", {"from": "tomorrow", "to": 7, "sessions": {}}),
        (practice_key, "PUT", f"/api/v1/rotas/{ODS}", {"from": "2030-01-01", "to": "2030-01-02", "sessions": [
            {"session_id": 1, "clinician_id": None, "slot_type": [], "start": "noon", "end": True,
             "slot_minutes": "10"}]}),
        (practice_key, "PUT", f"/api/v1/rotas/{ODS}", {"from": "2030-01-01", "to": "2030-01-02", "sessions": [
            {"session_id": "S", "clinician_id": f"{ODS}-GP1", "slot_type": "GP-ROUTINE", "start": "2030-01-01T09:00:00",
             "end": "2030-01-01T10:00:00", "slot_minutes": 2**63}]}),
        (practice_key, "PUT", f"/api/v1/rotas/{ODS}", {"from": "9999-12-31", "to": "10000-01-01", "sessions": []}),
        (admin, "POST", "/api/v1/holds", {"slot_id": 12345}),
        (admin, "POST", "/api/v1/holds", {"slot_id": None}),
        (admin, "POST", "/api/v1/appointments", {"slot_id": "x", "nhs_number": 9990000018}),
        (admin, "POST", "/api/v1/appointments", {"slot_id": ["x"], "nhs_number": patient}),
        (admin, "POST", "/api/v1/agents", {"username": "typed", "password": 1234567890123, "display_name": "T"}),
        (admin, "POST", "/api/v1/agents", {"username": "typed", "password": "long enough 1", "display_name": "T",
                                           "role": "root"}),
        (admin, "PUT", "/api/v1/agents/agent1/state", {"state": 3}),
        (admin, "POST", "/api/v1/callbacks", {"ods_code": ODS, "nhs_number": patient, "reason": ["call"]}),
        (admin, "POST", "/api/v1/callbacks", {"ods_code": ODS, "nhs_number": patient, "reason": "x", "due_by": "soon"}),
        (admin, "POST", "/api/v1/auth/token", {"username": ["e2e-admin"], "password": {"$ne": ""}}),
    ]
    for client, method, path, value in cases:
        assert_problem(send(client, method, path, value), 400, 401, 422)
    for path in ("/api/v1/slots?practice=Y90001&from=yesterday", "/api/v1/slots?practice=Y90001&limit=ten",
                 "/api/v1/practices?limit=-1", "/api/v1/practices?limit=0", "/api/v1/appointments?from=1e400",
                 "/api/v1/callbacks?status=maybe", "/api/v1/agents?active=perhaps", "/api/v1/audit?from=13/13/2020",
                 f"/api/v1/feed/{ODS}?after=-1", f"/api/v1/feed/{ODS}?after=1e3", "/api/v1/practices?cursor=%%%",
                 "/api/v1/practices?cursor=eyJhZnRlciI6IDF9", "/api/v1/pcns?cursor=bnVsbA"):
        assert_problem(admin.get(path), 400, 422)
    assert (practices(admin), agents(admin), read(admin, f"/api/v1/practices/{ODS}/clinicians")) == before


# ---------------------------------------------------------------------------------------------- text fields

class Attempts:
    """Sends every hostile string to one text field at a time. A refusal must be a problem and leave
    `snapshot()` as it was; an acceptance must read back exactly as sent."""

    def __init__(self, snapshot: Callable[[], Any]) -> None:
        self.snapshot = snapshot
        self.accepted: dict[str, set[str]] = {}

    def field(self, name: str, attempt: Callable[[str], httpx.Response],
              stored: Callable[[httpx.Response], Any] | None = None, *, unread_text: bool = False) -> None:
        """`attempt(value)` sends the value; `stored(response)` reads back what a free-text field kept. A field
        with neither `stored` nor `unread_text` (a code, an id, a date) must refuse every hostile string."""
        for label, value in HOSTILE.items():
            before = self.snapshot()
            response = attempt(value)
            if response.status_code < 300 and label not in MUST_REFUSE:
                assert stored is not None or unread_text, (name, label, "took a hostile string")
                if stored is not None:
                    assert stored(response) == value, (name, label)
                self.accepted.setdefault(name, set()).add(label)
                continue
            assert_problem(response, 400, 404, 409, 422)
            assert self.snapshot() == before, (name, label)


def test_hostile_strings_in_registry_text_fields(admin: httpx.Client, practice_key: httpx.Client):
    codes = iter(f"Z{n:05d}" for n in range(10_000, 99_999))
    attempts = Attempts(lambda: (practices(admin), read(admin, f"/api/v1/practices/{ODS}/clinicians"),
                                 read(admin, f"/api/v1/practices/{ODS}/slot-types"),
                                 read(admin, "/api/v1/pcns?limit=500")))

    free_text = ("name", "address", "notes_for_agents")
    for field in ("ods_code", "pcn", "phone", *free_text):
        attempts.field(f"new practice's {field}",
                       lambda v, f=field: send(admin, "POST", "/api/v1/practices",
                                               {"ods_code": next(codes), "name": "Hostile Test Surgery", f: v}),
                       (lambda r, f=field: read(admin, f"/api/v1/practices/{r.json()['ods_code']}")[f])
                       if field in free_text else None)
    for field in ("phone", *free_text):
        attempts.field(f"practice's {field}",
                       lambda v, f=field: send(admin, "PATCH", f"/api/v1/practices/{OTHER_ODS}", {f: v}),
                       (lambda _r, f=field: read(admin, f"/api/v1/practices/{OTHER_ODS}")[f])
                       if field in free_text else None)
    pcn_codes = iter(f"PCN-H{n}" for n in range(1000))
    attempts.field("pcn's name", lambda v: send(admin, "POST", "/api/v1/pcns", {"code": next(pcn_codes), "name": v}),
                   lambda r: read(admin, f"/api/v1/pcns/{r.json()['code']}")["name"])
    attempts.field("pcn's code", lambda v: send(admin, "POST", "/api/v1/pcns", {"code": v, "name": "Hostile PCN"}))

    def clinician(field: str) -> Callable[[str], httpx.Response]:
        def attempt(value: str) -> httpx.Response:
            current = read(admin, f"/api/v1/practices/{ODS}/clinicians")
            extra = {"clinician_id": "HOSTILE-1", "name": "Dr Hostile", "role": "gp", field: value}
            return send(practice_key, "PUT", f"/api/v1/practices/{ODS}/clinicians",
                        [c for c in current if c["clinician_id"] != "HOSTILE-1"] + [extra])
        return attempt

    def stored_clinician(_response: httpx.Response) -> str:
        return {c["clinician_id"]: c["name"] for c in read(admin, f"/api/v1/practices/{ODS}/clinicians")}["HOSTILE-1"]

    attempts.field("clinician's name", clinician("name"), stored_clinician)
    for field in ("clinician_id", "role", "gender"):
        attempts.field(f"clinician's {field}", clinician(field))

    def slot_type(field: str) -> Callable[[str], httpx.Response]:
        def attempt(value: str) -> httpx.Response:
            current = read(admin, f"/api/v1/practices/{ODS}/slot-types")
            extra = {"code": "HOSTILE", "name": "Hostile type", "channel": "telephone", "bookable_by_centre": False,
                     "max_days_ahead": 7, "min_notice_minutes": 0, field: value}
            return send(practice_key, "PUT", f"/api/v1/practices/{ODS}/slot-types",
                        [t for t in current if t["code"] != "HOSTILE"] + [extra])
        return attempt

    def stored_slot_type(_response: httpx.Response) -> str:
        return {t["code"]: t["name"] for t in read(admin, f"/api/v1/practices/{ODS}/slot-types")}["HOSTILE"]

    attempts.field("slot type's name", slot_type("name"), stored_slot_type)
    for field in ("code", "channel"):
        attempts.field(f"slot type's {field}", slot_type(field))

    # Free text keeps whatever a person may write (codes and identifiers took none of it: Attempts checks).
    for name in ("new practice's name", "new practice's address", "new practice's notes_for_agents",
                 "practice's name", "practice's address", "practice's notes_for_agents", "pcn's name",
                 "clinician's name", "slot type's name"):
        assert attempts.accepted[name] == set(HARMLESS), name


def test_hostile_strings_in_desk_and_booking_text_fields(admin: httpx.Client, practice_key: httpx.Client,
                                                         demo: dict):
    patient = next(p["nhs_number"] for p in demo["demo_patients"] if p["ods_code"] == ODS)
    slots = iter(s["id"] for s in read(admin, f"/api/v1/slots?practice={ODS}&limit=100")["items"])
    names = iter(f"hostile{n}" for n in range(1000))
    attempts = Attempts(lambda: (agents(admin), read(admin, "/api/v1/callbacks?limit=500"),
                                 read(admin, f"/api/v1/appointments?practice={ODS}&limit=500"),
                                 read(admin, f"/api/v1/feed/{ODS}?limit=500")["last_cursor"]))

    def new_agent(field: str) -> Callable[[str], httpx.Response]:
        return lambda value: send(admin, "POST", "/api/v1/agents", {
            "username": next(names), "password": "a long password", "display_name": "Hostile Agent", field: value})

    attempts.field("agent's display_name", new_agent("display_name"),
                   lambda r: read(admin, f"/api/v1/agents/{r.json()['username']}")["display_name"])
    attempts.field("agent's password", new_agent("password"), unread_text=True)  # any 10 to 256 characters
    for field in ("username", "role"):
        attempts.field(f"agent's {field}", new_agent(field))
    attempts.field("agent's new display_name",
                   lambda v: send(admin, "PATCH", "/api/v1/agents/agent4", {"display_name": v}),
                   lambda _r: read(admin, "/api/v1/agents/agent4")["display_name"])

    attempts.field("callback's reason",
                   lambda v: send(practice_key, "POST", "/api/v1/callbacks",
                                  {"ods_code": ODS, "nhs_number": patient, "reason": v}),
                   lambda r: read(admin, f"/api/v1/callbacks/{r.json()['id']}")["reason"])
    for field in ("ods_code", "nhs_number", "due_by"):
        attempts.field(f"callback's {field}",
                       lambda v, f=field: send(admin, "POST", "/api/v1/callbacks",
                                               {"ods_code": ODS, "nhs_number": patient, "reason": "Hostile", f: v}))
    task = send(admin, "POST", "/api/v1/callbacks", {"ods_code": ODS, "nhs_number": patient, "reason": "Notes"})
    assert task.status_code == 201, task.text
    assert send(admin, "PATCH", f"/api/v1/callbacks/{task.json()['id']}", {"action": "claim"}).status_code == 200
    attempts.field("callback attempt's note",
                   lambda v: send(admin, "PATCH", f"/api/v1/callbacks/{task.json()['id']}",
                                  {"action": "attempt", "note": v}),
                   lambda r: r.json()["attempt_log"][-1]["note"])
    attempts.field("callback's action",
                   lambda v: send(admin, "PATCH", f"/api/v1/callbacks/{task.json()['id']}", {"action": v}))

    attempts.field("appointment's reason",
                   lambda v: send(admin, "POST", "/api/v1/appointments",
                                  {"slot_id": next(slots), "nhs_number": patient, "reason": v}),
                   lambda r: read(admin, f"/api/v1/appointments/{r.json()['id']}")["reason"])
    for field in ("slot_id", "hold_id", "nhs_number"):
        attempts.field(f"appointment's {field}",
                       lambda v, f=field: send(admin, "POST", "/api/v1/appointments",
                                               {"slot_id": "no-such-slot", "nhs_number": patient, f: v}))
    attempts.field("hold's slot_id", lambda v: send(admin, "POST", "/api/v1/holds", {"slot_id": v}))

    # Each try books first (a change of its own), so the cancel's refusal is checked on the appointment itself.
    for label, value in HOSTILE.items():
        booked = send(admin, "POST", "/api/v1/appointments", {"slot_id": next(slots), "nhs_number": patient})
        assert booked.status_code == 201, booked.text
        before = read(admin, f"/api/v1/appointments/{booked.json()['id']}")
        cancelled = send(admin, "POST", f"/api/v1/appointments/{booked.json()['id']}/cancel", {"reason": value})
        after = read(admin, f"/api/v1/appointments/{booked.json()['id']}")
        if label in MUST_REFUSE:
            assert_problem(cancelled, 422)
            assert after == before, label
        else:
            assert cancelled.status_code == 200, (label, cancelled.text)
            assert (after["status"], after["cancel_reason"]) == ("cancelled", value), label

    day = date.today() + timedelta(days=45)  # past the seeded weeks: nothing booked there to displace
    for field in ("session_id", "clinician_id", "slot_type"):
        def rota(value: str, f: str = field) -> httpx.Response:
            session = {"session_id": "HOSTILE-S1", "clinician_id": f"{ODS}-GP1", "slot_type": "GP-ROUTINE",
                       "start": f"{day}T09:00:00", "end": f"{day}T10:00:00", "slot_minutes": 10, f: value}
            return send(practice_key, "PUT", f"/api/v1/rotas/{ODS}",
                        {"from": str(day), "to": str(day + timedelta(days=1)), "sessions": [session]})
        # A session id is the practice's own label, never shown back; clinicians and slot types must exist.
        attempts.field(f"rota session's {field}", rota, unread_text=field == "session_id")
    for name in ("agent's display_name", "agent's new display_name", "callback's reason",
                 "callback attempt's note", "appointment's reason"):
        assert attempts.accepted[name] == set(HARMLESS), name


def test_hostile_strings_in_patient_uploads_reject_the_row(admin: httpx.Client, practice_key: httpx.Client):
    fresh = iter(synthetic_nhs_numbers(200, start=999_700_000))
    for field in ("family", "given", "postcode", "phone", "gender", "birth_date", "nhs_number"):
        for label, value in HOSTILE.items():
            nhs = next(fresh)
            row = {"nhs_number": nhs, "family": "Hostile", "given": "Test", "birth_date": "1970-01-01", field: value}
            response = send(practice_key, "PUT", f"/api/v1/practices/{ODS}/patients", [row])
            if label == "nul":  # refused before anything is read: the whole upload
                assert_problem(response, 422)
            else:
                assert response.status_code == 200, (field, label, response.text[:300])
                result = response.json()
                if field in ("family", "given") and label in HARMLESS:
                    assert result["created"] == 1 and result["rejected"] == [], (field, label, result)
                    found = read(admin, f"/api/v1/patients?nhs_number={nhs}")["items"]
                    assert [p[field] for p in found] == [value], (field, label)
                    continue
                assert result["created"] == 0 and len(result["rejected"]) == 1, (field, label, result)
            if field != "nhs_number":
                assert read(admin, f"/api/v1/patients?nhs_number={nhs}")["items"] == [], (field, label)


def test_hostile_values_in_paths_and_queries_are_never_a_5xx(admin: httpx.Client, practice_key: httpx.Client):
    paths = ["/api/v1/practices/{}", "/api/v1/practices/{}/clinicians", "/api/v1/pcns/{}", "/api/v1/agents/{}",
             "/api/v1/appointments/{}", "/api/v1/callbacks/{}", "/api/v1/feed/{}", "/api/v1/holds/{}"]
    queries = ["/api/v1/practices?q={}", "/api/v1/practices?pcn={}", "/api/v1/patients?nhs_number={}",
               "/api/v1/patients?family={}&birth_date=1970-01-01", "/api/v1/slots?practice=Y90001&slot_type={}",
               "/api/v1/slots?practice={}", "/api/v1/appointments?nhs_number={}", "/api/v1/audit?actor={}",
               "/api/v1/callbacks?practice={}", "/api/v1/agents?cursor={}", f"/api/v1/feed/{ODS}?after={{}}"]
    before = practices(admin)
    for label, value in HOSTILE.items():
        if label == "lone surrogate":
            continue  # a URL cannot carry one: percent-encoding is of UTF-8 bytes
        encoded = quote(value[:2000], safe="")
        for template in paths:
            response = admin.get(template.format(encoded))
            if response.status_code >= 400:
                assert_problem(response, 400, 403, 404, 405, 422)
            assert response.status_code < 500
        for template in queries:
            for client in (admin, practice_key):
                response = client.get(template.format(encoded))
                if response.status_code >= 400:
                    assert_problem(response, 400, 403, 404, 422)
        assert_problem(admin.delete(f"/api/v1/holds/{encoded}"), 400, 404, 422)
        assert_problem(send(admin, "PATCH", f"/api/v1/practices/{encoded}", {"name": "Renamed"}), 400, 404, 422)
    assert practices(admin) == before


# ---------------------------------------------------------------------------------------------- listings

@pytest.mark.parametrize("path", [
    "/api/v1/practices", "/api/v1/pcns", f"/api/v1/practices/{ODS}/api-keys", "/api/v1/slots?practice=Y90001",
    f"/api/v1/appointments?practice={ODS}", "/api/v1/callbacks", "/api/v1/calls", "/api/v1/agents", "/api/v1/audit",
    f"/api/v1/feed/{ODS}",
])
def test_huge_page_sizes_are_capped_never_a_5xx(admin: httpx.Client, path: str):
    for limit in ("1000000", "99999999999999999999999999", "501"):
        separator = "&" if "?" in path else "?"
        response = admin.get(f"{path}{separator}limit={limit}")
        assert response.status_code == 200, (limit, response.text[:300])
        assert len(response.json()["items"]) <= 500


# ---------------------------------------------------------------------------------------------- real names

def test_names_from_real_people_are_accepted_and_found(admin: httpx.Client, practice_key: httpx.Client):
    practice_names = ["Meddygfa Llanfair‑ym‑Muallt", "Przychodnia Zdrowia Łódź-Śródmieście",
                      "O'Connor & D'Souza Family Practice", "Clinique Désirée Müller", "Ysgol Feddygol Pen-y-bont"]
    for i, name in enumerate(practice_names):
        created = send(admin, "POST", "/api/v1/practices", {"ods_code": f"W{i:05d}", "name": name,
                                                             "address": f"{i} Stryd Fawr, Caerdydd"})
        assert created.status_code == 201, created.text
        assert read(admin, f"/api/v1/practices/W{i:05d}")["name"] == name
    assert {p["name"] for p in read(admin, "/api/v1/practices?q=Śródmieście")["items"]} == {practice_names[1]}

    people = [("Llŵyd", "Siân"), ("Wójcik", "Łucja"), ("O'Brien", "Siobhán"), ("Ní Bhriain", "Aoife"),
              ("Nguyễn", "Thị Minh Khai"), ("Bjørnsen", "Søren"), ("Ap Rhys-Pryce", "Gwenllïan")]
    numbers = synthetic_nhs_numbers(len(people), start=999_800_000)
    rows = [{"nhs_number": n, "family": family, "given": given, "birth_date": "1984-02-29"}
            for n, (family, given) in zip(numbers, people)]
    uploaded = send(practice_key, "PUT", f"/api/v1/practices/{ODS}/patients", rows)
    assert uploaded.status_code == 200 and uploaded.json()["created"] == len(people), uploaded.text
    for n, (family, given) in zip(numbers, people):
        found = admin.get("/api/v1/patients", params={"family": family, "birth_date": "1984-02-29"}).json()["items"]
        assert [(p["nhs_number"], p["family"], p["given"]) for p in found] == [(n, family, given)]

    agent = send(admin, "POST", "/api/v1/agents", {"username": "rhiannon.ap-gwilym", "password": "a long password",
                                                    "display_name": "Rhiannon ap Gwilym-Ŵyn"})
    assert agent.status_code == 201, agent.text
    assert read(admin, "/api/v1/agents/rhiannon.ap-gwilym")["display_name"] == "Rhiannon ap Gwilym-Ŵyn"
