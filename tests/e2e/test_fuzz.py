"""Schemathesis against the running centre: the gateway's merged spec (as an admin and as a practice's key) and
each service's own spec called directly with a signed admin identity. Whatever the fuzzer sends, the answer is
never a 5xx and every 4xx is problem+json.

Bounded for CI: a few examples per operation (plus schemathesis' coverage cases), derandomised so a failure
reproduces on the next run; about 13,000 requests in 2.5 minutes for both databases on a 2-core machine. Half
the time path ids and ODS codes are real ones from the seeded region, so cases get past the 404 into the rules;
now and then any generated string is swapped for a hostile one."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from services.auth import Principal, sign_identity
from tests.e2e.conftest import ADMIN, RunningStack, running_stack
from tests.e2e.databases import stack_databases

pytestmark = pytest.mark.e2e

PROBLEM_JSON = "application/problem+json"
SERVICES = ("practice-registry-svc", "booking-svc", "agent-desk-svc")
DIALECTS = ("sqlite", "postgresql")
# Each run gets its own practice, so one run's fuzzed changes (a practice PATCHed to closed, a rota replaced)
# do not decide what another run can reach.
ADMIN_PRACTICE, KEY_PRACTICE = "Y90002", "Y90001"
SERVICE_PRACTICE = {"practice-registry-svc": "Y90003", "booking-svc": "Y90004", "agent-desk-svc": "Y90005"}
# The fuzzer signs in as this one: a failed sign-in counts towards a per-username lock, so it must never be a
# real account (least of all the admin the other runs authenticate as).
THROWAWAY_USERNAME = "fuzz-throwaway-user"

# Strings the fuzzer slips into any string it generates, now and then: what a hostile or careless client sends.
HOSTILE_STRINGS = [
    "'; DROP TABLE practices; --", "\" OR 1=1 --", "<script>alert(1)</script>", "a\u0000b", "\u0000",
    "\u202egnp.exe", "\U0001f600\U0001f3e5", "Siân Llŵyd", "Łukasz Wójcik", "O'Brien", "%s%n%x", "../../etc/passwd",
    "x" * 5000, " ", "",
]  # Lone surrogates are in test_bad_input.py: schemathesis (4.32) fails on them itself, before sending.

FUZZ = settings(
    max_examples=8,
    deadline=None,
    derandomize=True,
    database=None,
    # Few examples over real HTTP calls is the point here, not a smell.
    suppress_health_check=list(HealthCheck),
)


@schemathesis.check
def client_errors_are_problem_json(ctx, response, case) -> bool | None:
    if 400 <= response.status_code < 500:
        content_type = (response.headers.get("content-type") or [""])[0]
        assert content_type.split(";")[0].strip() == PROBLEM_JSON, (
            f"{response.status_code} answered with content-type {content_type!r}, not {PROBLEM_JSON}")
        body = json.loads(response.content)
        assert isinstance(body.get("code"), str) and body.get("status") == response.status_code, body
    return None


CHECKS = [not_a_server_error, client_errors_are_problem_json]


@pytest.fixture(scope="module", params=DIALECTS)
def fuzz_stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    tmp = tmp_path_factory.mktemp(f"fuzz-{request.param}")
    with stack_databases(request.param, tmp) as database_env:
        # The fuzzer sends far more than an agent's 20 requests a second: rate limits would turn most cases into
        # 429s and test nothing. The limiter itself is tested in tests/gateway.
        with running_stack(tmp / "var", seed=True,
                           extra_env={**database_env, "GATEWAY_RATE_LIMIT_PRINCIPAL": "1000000/minute",
                                      "GATEWAY_RATE_LIMIT_ANONYMOUS": "1000000/minute"}) as running:
            yield running


@pytest.fixture(scope="module")
def demo(fuzz_stack: RunningStack) -> dict:
    return json.loads((fuzz_stack.data_dir / "demo.json").read_text())


@pytest.fixture(scope="module")
def admin_token(fuzz_stack: RunningStack) -> str:
    return fuzz_stack.admin_token()


@pytest.fixture(scope="module")
def open_call(fuzz_stack: RunningStack, admin_token: str) -> str:
    """One open call of the admin's (an agent has at most one), for the fuzzer to close in every way."""
    headers = {"Authorization": f"Bearer {admin_token}"}
    # Only an available agent may take a call.
    state = httpx.put(f"{fuzz_stack.url}/api/v1/agents/{ADMIN[0]}/state", json={"state": "available"},
                      headers=headers, timeout=20)
    assert state.status_code == 200, state.text
    call = httpx.post(f"{fuzz_stack.url}/api/v1/calls", json={}, headers=headers, timeout=20)
    assert call.status_code == 201, call.text
    return call.json()["id"]


def real_values(stack: RunningStack, token: str, demo: dict, ods: str, call_id: str) -> dict[str, list[str]]:
    """Real ids in `ods` for the fuzzer to use half the time: free slots, its registered patients, a booked
    appointment, a hold and a callback task."""
    client = httpx.Client(base_url=stack.url, headers={"Authorization": f"Bearer {token}"}, timeout=20)
    with client:
        slots = [s["id"] for s in client.get("/api/v1/slots", params={"practice": ods, "limit": 6}).json()["items"]]
        patients = [p["nhs_number"] for p in demo["demo_patients"] if p["ods_code"] == ods]
        booked = client.post("/api/v1/appointments", json={"slot_id": slots[0], "nhs_number": patients[0]})
        held = client.post("/api/v1/holds", json={"slot_id": slots[1]})
        callback = client.post("/api/v1/callbacks", json={"ods_code": ods, "nhs_number": patients[0],
                                                          "reason": "fuzzing"})
        for response in (booked, held, callback):
            assert response.status_code == 201, response.text
    return {
        "path.ods": [ods], "path.ods_code": [ods], "query.practice": [ods], "body.ods_code": [ods],
        "body.practice": [ods],
        "path.appointment_id": [booked.json()["id"]], "path.hold_id": [held.json()["hold_id"]],
        "path.call_id": [call_id], "path.callback_id": [callback.json()["id"]],
        "body.slot_id": slots[2:], "body.nhs_number": patients, "query.nhs_number": patients,
        "path.username": ["agent3", "agent4"], "path.code": ["PCN-NORTH"],
    }


def fuzz_schema(spec_url: str, base_url: str, headers: dict[str, str],
                bound: dict[str, list[str]]) -> schemathesis.BaseSchema:
    dictionaries = {"hostile": {"values": HOSTILE_STRINGS}}
    parameters = {}
    for i, (parameter, values) in enumerate(bound.items()):
        dictionaries[f"real{i}"] = {"values": values}
        parameters[parameter] = {"dictionary": f"real{i}", "probability": 0.5}
    config = schemathesis.Config.from_dict({
        "base-url": base_url,
        "headers": headers,
        "request-timeout": 30,
        "dictionaries": dictionaries,
        "parameters": parameters,
        # The fixed headers above are the credentials; generated ones would only replace them with junk.
        "generation": {"mode": "all", "max-examples": FUZZ.max_examples, "deterministic": True,
                       "with-security-parameters": False,
                       "dictionaries": {"string": {"dictionary": "hostile", "probability": 0.1}}},
    })
    return schemathesis.openapi.from_url(spec_url, config=config, timeout=30)


@pytest.fixture(scope="module")
def gateway_as_admin(fuzz_stack: RunningStack, admin_token: str, demo: dict,
                     open_call: str) -> schemathesis.BaseSchema:
    return fuzz_schema(f"{fuzz_stack.url}/api/v1/openapi.json", fuzz_stack.url,
                       {"Authorization": f"Bearer {admin_token}"},
                       real_values(fuzz_stack, admin_token, demo, ADMIN_PRACTICE, open_call))


@pytest.fixture(scope="module")
def gateway_as_practice(fuzz_stack: RunningStack, admin_token: str, demo: dict,
                        open_call: str) -> schemathesis.BaseSchema:
    return fuzz_schema(f"{fuzz_stack.url}/api/v1/openapi.json", fuzz_stack.url,
                       {"X-API-Key": demo["api_keys"][KEY_PRACTICE]},
                       real_values(fuzz_stack, admin_token, demo, KEY_PRACTICE, open_call))


@pytest.fixture(scope="module", params=SERVICES)
def service_as_admin(request: pytest.FixtureRequest, fuzz_stack: RunningStack, admin_token: str,
                     demo: dict, open_call: str) -> schemathesis.BaseSchema:
    base = f"http://127.0.0.1:{fuzz_stack.ports()[request.param]}"
    secret = json.loads((fuzz_stack.data_dir / "secrets.json").read_text())["identity_secret"]
    # Long enough for the whole run (the gateway's own identities live 120 s).
    identity = sign_identity(Principal(ADMIN[0], "admin"), secret, ttl_seconds=3600)
    return fuzz_schema(f"{base}/api/v1/openapi.json", base, {"X-Callcentre-Identity": identity},
                       real_values(fuzz_stack, admin_token, demo, SERVICE_PRACTICE[request.param], open_call))


@pytest.fixture(autouse=True)
def _node_id_for_schemathesis(request: pytest.FixtureRequest) -> None:
    # schemathesis' lazy loader (4.32) reads and rewrites `node._nodeid`, which pytest 9 no longer has.
    request.node._nodeid = request.node.nodeid


def fuzz(case: schemathesis.Case) -> None:
    if case.operation.path == "/api/v1/auth/token" and isinstance(case.body, dict):
        case.body["username"] = THROWAWAY_USERNAME
    case.call_and_validate(checks=CHECKS)


# GET /api/v1/stream is server-sent events: the response never ends, so every fuzzed call would only time out.
gateway_admin = schemathesis.pytest.from_fixture("gateway_as_admin").exclude(path="/api/v1/stream")
gateway_practice = schemathesis.pytest.from_fixture("gateway_as_practice").exclude(path="/api/v1/stream")
service_admin = schemathesis.pytest.from_fixture("service_as_admin").exclude(path="/api/v1/stream")


@gateway_practice.parametrize()
@FUZZ
def test_gateway_with_a_practice_key(case: schemathesis.Case) -> None:
    fuzz(case)


@gateway_admin.parametrize()
@FUZZ
def test_gateway_with_an_admin_token(case: schemathesis.Case) -> None:
    fuzz(case)


@service_admin.parametrize()
@FUZZ
def test_each_service_directly_with_an_admin_identity(case: schemathesis.Case) -> None:
    fuzz(case)
