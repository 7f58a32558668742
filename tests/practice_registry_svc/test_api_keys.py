"""Practice API keys: issued once, listed without secrets, verified for the gateway, revoked."""

from __future__ import annotations

import re

from sqlalchemy import select

from practice_registry_svc.api_keys.models import ApiKey
from tests.practice_registry_svc.conftest import Registry
from tests.practice_registry_svc.support import make_practice
from tests.support.apps import ADMIN, AGENT, SUPERVISOR, identity, practice

GATEWAY = identity("service", "gateway")
VERIFY = "/internal/v1/api-keys/verify"


async def test_keys_are_issued_once_listed_without_secrets_verified_and_revoked(registry: Registry):
    client = registry.client
    await make_practice(client, "A81001")
    await make_practice(client, "B82001")
    keys_path = "/api/v1/practices/A81001/api-keys"

    issued = await client.post(keys_path, headers=ADMIN)
    assert issued.status_code == 201 and issued.headers["cache-control"] == "no-store"
    key, key_id = issued.json()["key"], issued.json()["key_id"]
    assert re.fullmatch(rf"cck_{key_id}_[A-Za-z0-9_-]{{43,}}", key)
    second = (await client.post("/api/v1/practices/a81001/api-keys", headers=ADMIN)).json()
    other_practice = (await client.post("/api/v1/practices/B82001/api-keys", headers=ADMIN)).json()
    assert len({key, second["key"], other_practice["key"]}) == 3
    for who in (AGENT, SUPERVISOR, practice("A81001")):
        assert (await client.post(keys_path, headers=who)).status_code == 403
    assert (await client.post("/api/v1/practices/Z99999/api-keys", headers=ADMIN)).status_code == 404

    # Only a SHA-256 of the key is stored.
    async with registry.app.state.db.session() as session:
        stored = (await session.execute(select(ApiKey).where(ApiKey.key_id == key_id))).scalar_one()
    assert len(stored.secret_hash) == 64 and key.split("_", 2)[2] not in stored.secret_hash

    listing = await client.get(keys_path, headers=ADMIN)
    assert listing.status_code == 200
    assert [(k["key_id"], k["created_by"], k["revoked_at"]) for k in listing.json()["items"]] == [
        (key_id, "admin", None), (second["key_id"], "admin", None)]
    assert key not in listing.text and key.split("_", 2)[2] not in listing.text and "hash" not in listing.text
    assert (await client.get(keys_path, headers=practice("A81001"))).status_code == 200
    assert (await client.get(keys_path, headers=practice("B82001"))).status_code == 403
    assert (await client.get(keys_path, headers=AGENT)).status_code == 403

    verified = await client.post(VERIFY, json={"key": key}, headers=GATEWAY)
    assert verified.status_code == 200
    assert verified.json() == {"key_id": key_id, "ods_code": "A81001", "practice_status": "active"}
    wrong_secret = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    for bad in (wrong_secret, f"cck_{'0' * 32}_{key.split('_', 2)[2]}", "not-a-key", "", key + "x" * 600):
        response = await client.post(VERIFY, json={"key": bad}, headers=GATEWAY)
        assert response.status_code in (401, 422), bad
        if response.status_code == 401:
            assert response.json()["code"] == "invalid_api_key"
    assert (await client.post(VERIFY, json={"key": wrong_secret}, headers=GATEWAY)).status_code == 401
    for caller in (ADMIN, AGENT, practice("A81001")):  # only internal callers (the gateway) verify keys
        assert (await client.post(VERIFY, json={"key": key}, headers=caller)).status_code == 403
    assert (await client.post(VERIFY, json={"key": key})).status_code == 401

    # A practice may revoke its own key, not another practice's; revoking twice is harmless.
    assert (await client.delete(f"{keys_path}/{key_id}", headers=practice("B82001"))).status_code == 403
    assert (await client.delete(f"/api/v1/practices/B82001/api-keys/{key_id}", headers=ADMIN)).status_code == 404
    assert (await client.delete(f"{keys_path}/{key_id}", headers=AGENT)).status_code == 403
    assert (await client.delete(f"{keys_path}/{key_id}", headers=ADMIN)).status_code == 204
    assert (await client.delete(f"{keys_path}/{key_id}", headers=practice("A81001"))).status_code == 204
    assert (await client.delete(f"{keys_path}/nope", headers=ADMIN)).status_code == 404
    revoked = await client.post(VERIFY, json={"key": key}, headers=GATEWAY)
    assert revoked.status_code == 401 and revoked.json()["code"] == "invalid_api_key"
    after = {k["key_id"]: k["revoked_at"] for k in (await client.get(keys_path, headers=ADMIN)).json()["items"]}
    assert after[key_id] is not None and after[second["key_id"]] is None

    # A suspended practice's keys still verify (it must still read its feed), and say it is suspended.
    suspended = await client.patch("/api/v1/practices/A81001", json={"status": "suspended"}, headers=ADMIN)
    assert suspended.status_code == 200
    still = await client.post(VERIFY, json={"key": second["key"]}, headers=GATEWAY)
    assert still.status_code == 200 and still.json()["practice_status"] == "suspended"
