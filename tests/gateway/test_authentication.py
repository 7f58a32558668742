"""Credentials at the gateway: staff JWTs (forged ones refused), RS256 through OIDC discovery, the UI cookie
with its CSRF double submit, and practice API keys checked with the registry behind a short cache."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.gateway.conftest import (IDENTITY_SECRET, OTHER_KEY, OWN_KEY, bearer, forged, staff_token)
from tests.support.apps import wait_until

PATH = "/api/v1/practices/A81001"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(**changes) -> dict:
    now = int(time.time())
    claims = {"sub": "mallory", "role": "admin", "aud": "callcentre-staff", "iat": now, "exp": now + 600}
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


async def _problem(response: httpx.Response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["request_id"] == response.headers["x-request-id"]
    if code:
        assert body["code"] == code
    return body


async def test_missing_and_forged_tokens_are_401(client: httpx.AsyncClient):
    response = await client.get(PATH)
    await _problem(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"].startswith("Bearer")

    unsigned = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode()) + "." + _b64(
        json.dumps(_claims()).encode()) + "."
    forgeries = {
        "alg none": unsigned,
        "alg none, capitalised": _b64(b'{"alg":"None","typ":"JWT"}') + "." + _b64(json.dumps(_claims()).encode()) + ".",
        "wrong key": forged(_claims(), key="not-the-secret-0123456789abcdef0123456"),
        "identity secret": forged(_claims(), key=IDENTITY_SECRET),
        "expired": forged(_claims(exp=int(time.time()) - 60)),
        "wrong audience": forged(_claims(aud="callcentre-internal")),
        "no audience": forged(_claims(aud=None)),
        "no expiry": forged(_claims(exp=None)),
        "service role": forged(_claims(role="service")),
        "practice role": forged(_claims(role="practice")),
        "garbage": "not.a.jwt",
    }
    for name, token in forgeries.items():
        response = await client.get(PATH, headers={"Authorization": f"Bearer {token}"})
        body = await _problem(response, 401)
        assert body["code"] in ("invalid_token", "token_expired"), name
    await _problem(await client.get(PATH, headers={"Authorization": "Basic YWRtaW46YWRtaW4="}), 401, "invalid_token")
    # The genuine article works, and a bad token is never rescued by a good cookie.
    assert (await client.get(PATH, headers=bearer("admin"))).status_code == 200
    await _problem(await client.get(PATH, headers={"Authorization": "Bearer nope"},
                                    cookies={"cc_session": staff_token("admin")}), 401)


async def test_rs256_tokens_via_oidc_discovery(client: httpx.AsyncClient, upstreams):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": "idp-key-1", "use": "sig", "alg": "RS256"})
    httpx.post(f"{upstreams['desk'].url}/_control/jwks", json={"keys": [jwk]})
    issuer = f"{upstreams['desk'].url}/idp"

    def rs256(signing_key, **changes) -> str:  # noqa: ANN001
        return jwt.encode(_claims(**{"sub": "sso-user", "role": ["agent", "supervisor"], "iss": issuer, **changes}),
                          signing_key,
                          algorithm="RS256", headers={"kid": "idp-key-1"})

    response = await client.get(PATH, headers={"Authorization": f"Bearer {rs256(key)}"})
    assert response.status_code == 200, response.text
    assert response.json()["identity"] == {"subject": "sso-user", "role": "supervisor", "ods_code": None}

    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    await _problem(await client.get(PATH, headers={"Authorization": f"Bearer {rs256(other_key)}"}), 401)
    await _problem(await client.get(PATH, headers={"Authorization": f"Bearer {rs256(key, iss='https://evil')}"}), 401)
    # Algorithm confusion: an HS256 token "signed" with the public key must not verify against it.
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    # (PyJWT itself refuses to HMAC with a PEM key, so the token is built by hand.)
    signing_input = _b64(b'{"alg":"HS256","typ":"JWT","kid":"idp-key-1"}') + "." + _b64(
        json.dumps(_claims(iss=issuer)).encode())
    confused = signing_input + "." + _b64(hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest())
    await _problem(await client.get(PATH, headers={"Authorization": f"Bearer {confused}"}), 401)


async def test_session_cookie_needs_csrf_for_changes(client: httpx.AsyncClient):
    session = staff_token("agent")
    response = await client.get("/api/v1/calls", cookies={"cc_session": session})
    assert response.status_code == 200 and response.json()["identity"]["role"] == "agent"

    await _problem(await client.post("/api/v1/calls", json={}, cookies={"cc_session": session}), 403, "csrf_failed")
    await _problem(await client.post("/api/v1/calls", json={}, cookies={"cc_session": session, "cc_csrf": "abc"}),
                   403, "csrf_failed")
    await _problem(await client.post("/api/v1/calls", json={}, headers={"X-CSRF-Token": "abc"},
                                     cookies={"cc_session": session, "cc_csrf": "xyz"}), 403, "csrf_failed")
    ok = await client.post("/api/v1/calls", json={}, headers={"X-CSRF-Token": "abc"},
                           cookies={"cc_session": session, "cc_csrf": "abc", "other": "x[y]"})
    assert ok.status_code == 200 and ok.json()["identity"]["role"] == "agent"
    # A bearer token is not sent by a browser on its own: no CSRF check for it.
    assert (await client.post("/api/v1/calls", json={}, headers=bearer("agent"),
                              cookies={"cc_session": session})).status_code == 200
    await _problem(await client.get("/api/v1/calls", cookies={"cc_session": "forged"}), 401)

    # Cookies reach the UI's own service only.
    echoed = ok.json()
    assert any(k == "cookie" and "cc_session" in v for k, v in echoed["headers"])
    registry = (await client.get(PATH, cookies={"cc_session": session})).json()
    assert not any(k == "cookie" for k, _ in registry["headers"])
    # The UI itself is public, but a logged-in session is passed on so the page can know who is there.
    page = (await client.get("/", cookies={"cc_session": session})).json()
    assert page["identity"]["role"] == "agent"


async def test_api_key_cache_and_revocation(upstreams, log_dir):
    # A gateway of its own: its API key cache starts empty, and this test revokes a key in the fake registry.
    from tests.gateway.conftest import start_gateway

    registry = upstreams["registry"].url

    def verify_calls() -> int:
        return httpx.post(f"{registry}/_control/count", json={}).json()["verify_calls"]

    gateway = start_gateway(upstreams, log_dir, api_key_cache_seconds="1.5", api_key_negative_cache_seconds="1")
    try:
        async with httpx.AsyncClient(base_url=gateway.url) as client:
            before = verify_calls()
            for _ in range(5):
                response = await client.get(PATH, headers={"X-API-Key": OWN_KEY})
                assert response.status_code == 200
                assert response.json()["identity"] == {"subject": "key-a", "role": "practice", "ods_code": "A81001"}
            assert verify_calls() == before + 1  # cached

            for _ in range(3):
                await _problem(await client.get(PATH, headers={"X-API-Key": "pk_unknown"}), 401, "invalid_api_key")
            assert verify_calls() == before + 2  # refusals are cached too

            # The fake registry refuses anything but the gateway's signed service identity, so 200 above also
            # proves the gateway called it as role "service".
            httpx.post(f"{registry}/_control/revoke", json={"key": OWN_KEY})
            revoked_at = time.monotonic()

            async def refused() -> bool:
                return (await client.get(PATH, headers={"X-API-Key": OWN_KEY})).status_code == 401

            try:
                await wait_until(refused, timeout=10, interval=0.1)
                assert time.monotonic() - revoked_at < 15  # well inside the 30 s promise (cache here: 1.5 s)
            finally:
                httpx.post(f"{registry}/_control/unrevoke", json={"key": OWN_KEY})

            # The registry failing is a 503 for key holders, never a 401 (the key may be fine).
            httpx.post(f"{registry}/_control/verify-status", json={"status": 500})
            try:
                body = await _problem(await client.get(PATH, headers={"X-API-Key": OTHER_KEY}), 503,
                                      "upstream_unavailable")
                assert body["upstream"] == "registry"
            finally:
                httpx.post(f"{registry}/_control/verify-status", json={"status": None})
            assert (await client.get("/api/v1/practices/B82002", headers={"X-API-Key": OTHER_KEY})).status_code == 200
    finally:
        gateway.stop()
