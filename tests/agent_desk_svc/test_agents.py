"""Sign-in, the first admin, staff accounts and agent states."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import jwt
import pytest
from sqlalchemy import func, select, update

from agent_desk_svc.agents.models import Agent, SignInFailure
from agent_desk_svc.agents.service import ensure_admin
from services.auth import STAFF_AUDIENCE
from services.events import Envelope
from services.timeutil import utcnow
from tests.agent_desk_svc.conftest import ADMIN_PASSWORD, ADMIN_USER, Desk, staff
from tests.support.apps import identity, practice, wait_until

ADMIN = identity("admin", ADMIN_USER)


async def sign_in(desk: Desk, username: str, password: str):
    return await desk.client.post("/api/v1/auth/token", json={"username": username, "password": password})


async def test_sign_in_issues_a_verifiable_token_and_refuses_alike(desk: Desk) -> None:
    response = await sign_in(desk, "ROOT", ADMIN_PASSWORD)  # usernames are case-insensitive
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "bearer" and body["role"] == "admin" and body["expires_in"] == 8 * 3600
    claims = jwt.decode(body["access_token"], desk.settings.jwt_secret.get_secret_value(), algorithms=["HS256"],
                        audience=STAFF_AUDIENCE)
    assert claims["sub"] == ADMIN_USER and claims["role"] == "admin"
    assert claims["exp"] - claims["iat"] == 8 * 3600
    with pytest.raises(jwt.InvalidSignatureError):  # another secret does not verify it
        jwt.decode(body["access_token"], "another-secret-0123456789abcdef-xyz", algorithms=["HS256"],
                   audience=STAFF_AUDIENCE)

    await desk.create_agent("disabled.dan")
    disabled = await desk.client.patch("/api/v1/agents/disabled.dan", headers=ADMIN, json={"active": False})
    assert disabled.status_code == 200
    refusals = [await sign_in(desk, ADMIN_USER, "wrong-password-123"),
                await sign_in(desk, "nobody", "whatever-password"),
                await sign_in(desk, "disabled.dan", "disabled.dan-password-1"),
                await sign_in(desk, "", "")]
    for refusal in refusals:
        assert refusal.status_code == 401
        assert refusal.headers["content-type"].startswith("application/problem+json")
        assert refusal.json()["code"] == "invalid_credentials"
    # One message for every reason: nothing tells an attacker which usernames exist.
    assert len({r.json()["detail"] for r in refusals}) == 1

    # The route is public: no identity header needed (the gateway lets it through).
    assert "x-callcentre-identity" not in {k.lower() for k in desk.client.headers}
    # Passwords never reach the logs.
    logs = desk.logs.getvalue()
    assert "auth.sign_in_failed" in logs and "auth.signed_in" in logs
    for secret in (ADMIN_PASSWORD, "wrong-password-123", "disabled.dan-password-1", "whatever-password"):
        assert secret not in logs


async def test_admin_bootstrap_is_idempotent_and_safe_concurrently(desk: Desk) -> None:
    db, passwords = desk.app.state.db, desk.app.state.passwords
    assert await ensure_admin(db, passwords, ADMIN_USER, "a-different-password") is False
    assert (await sign_in(desk, ADMIN_USER, ADMIN_PASSWORD)).status_code == 200  # the existing password stands
    # Three replicas starting at once with a new admin name: exactly one creates it.
    created = await asyncio.gather(*(ensure_admin(db, passwords, "ops", "ops-password-0123") for _ in range(3)))
    assert sorted(created) == [False, False, True]
    async with db.session() as session:
        admins = (await session.execute(select(func.count()).select_from(Agent).where(Agent.role == "admin"))).scalar()
    assert admins == 2
    assert (await sign_in(desk, "ops", "ops-password-0123")).json()["role"] == "admin"


async def test_repeated_failures_lock_the_username(desk: Desk) -> None:
    await desk.create_agent("alice")
    for _ in range(desk.settings.sign_in_max_failures):
        assert (await sign_in(desk, "alice", "not-her-password")).status_code == 401
    locked = await sign_in(desk, "alice", "alice-password-1")  # even the right password waits out the lock
    assert locked.status_code == 429 and locked.json()["code"] == "sign_in_locked"
    assert 0 < int(locked.headers["retry-after"]) <= desk.settings.sign_in_lock_seconds + 1
    # Unknown names lock exactly the same way.
    for _ in range(desk.settings.sign_in_max_failures):
        assert (await sign_in(desk, "mallory", "guess-guess-guess")).status_code == 401
    assert (await sign_in(desk, "mallory", "guess-guess-guess")).status_code == 429
    assert (await sign_in(desk, "root", ADMIN_PASSWORD)).status_code == 200  # other names are unaffected

    async with desk.app.state.db.transaction() as session:  # five minutes pass
        await session.execute(update(SignInFailure).where(SignInFailure.username == "alice")
                              .values(locked_until=utcnow() - timedelta(seconds=1)))
    assert (await sign_in(desk, "alice", "alice-password-1")).status_code == 200
    async with desk.app.state.db.session() as session:
        assert await session.get(SignInFailure, "alice") is None  # success forgets the failures


async def test_who_may_create_and_change_accounts(desk: Desk) -> None:
    boss = staff("sue", "supervisor")
    await desk.create_agent("sue", "supervisor")
    await desk.create_agent("adam", "admin")
    created = await desk.create_agent("bob", "agent", by=boss)
    assert created["role"] == "agent" and created["state"] == "offline" and created["active"] is True
    assert "password" not in created and "password_hash" not in created

    def new(username: str, role: str) -> dict:
        return {"username": username, "password": "long-enough-password", "display_name": "X", "role": role}

    for role in ("supervisor", "admin"):
        refused = await desk.client.post("/api/v1/agents", headers=boss, json=new(f"x{role}", role))
        assert refused.status_code == 403 and refused.json()["code"] == "role_not_allowed"
    for caller in (staff("bob"), practice("A81001")):
        refused = await desk.client.post("/api/v1/agents", headers=caller, json=new("carol", "agent"))
        assert refused.status_code == 403
    assert (await desk.client.post("/api/v1/agents", json=new("carol", "agent"))).status_code == 401
    duplicate = await desk.client.post("/api/v1/agents", headers=ADMIN, json=new("BOB", "agent"))
    assert duplicate.status_code == 409 and duplicate.json()["code"] == "agent_exists"
    short = await desk.client.post("/api/v1/agents", headers=ADMIN,
                                   json={**new("carol", "agent"), "password": "tiny-pw"})
    assert short.status_code == 422
    assert "tiny-pw" not in short.text  # the rejected input is not echoed back

    listing = await desk.client.get("/api/v1/agents", headers=boss)
    assert [a["username"] for a in listing.json()["items"]] == ["adam", "bob", "root", "sue"]
    paged = await desk.client.get("/api/v1/agents", headers=boss, params={"limit": 3})
    assert len(paged.json()["items"]) == 3
    rest = await desk.client.get("/api/v1/agents", headers=boss, params={"cursor": paged.json()["next_cursor"]})
    assert [a["username"] for a in rest.json()["items"]] == ["sue"]
    assert (await desk.client.get("/api/v1/agents", headers=staff("bob"))).status_code == 403
    me = await desk.client.get("/api/v1/agents/me", headers=staff("bob"))
    assert me.status_code == 200 and me.json()["username"] == "bob"

    # Supervisors manage agents, but not roles and not other supervisors or admins.
    renamed = await desk.client.patch("/api/v1/agents/bob", headers=boss, json={"display_name": "Robert"})
    assert renamed.json()["display_name"] == "Robert"
    for body, target in (({"role": "supervisor"}, "bob"), ({"active": False}, "adam"), ({"display_name": "S"}, "sue")):
        refused = await desk.client.patch(f"/api/v1/agents/{target}", headers=boss, json=body)
        assert refused.status_code == 403 and refused.json()["code"] == "role_not_allowed"
    promoted = await desk.client.patch("/api/v1/agents/bob", headers=ADMIN, json={"role": "supervisor"})
    assert promoted.json()["role"] == "supervisor"
    assert (await desk.client.patch("/api/v1/agents/nobody", headers=ADMIN, json={"active": False})).status_code == 404

    # Password reset: the new one works, the old one no longer does.
    reset = await desk.client.patch("/api/v1/agents/bob", headers=ADMIN, json={"password": "brand-new-password"})
    assert reset.status_code == 200
    assert (await sign_in(desk, "bob", "brand-new-password")).status_code == 200
    assert (await sign_in(desk, "bob", "bob-password-1")).status_code == 401

    # The last active admin cannot be disabled or demoted.
    assert (await desk.client.patch("/api/v1/agents/adam", headers=ADMIN, json={"active": False})).status_code == 200
    last = await desk.client.patch("/api/v1/agents/root", headers=ADMIN, json={"role": "agent"})
    assert last.status_code == 409 and last.json()["code"] == "last_admin"
    assert "brand-new-password" not in desk.logs.getvalue()


async def test_agents_change_their_own_state_and_supervisors_anyones(desk: Desk) -> None:
    await desk.create_agent("alice")
    await desk.create_agent("bob")
    before = (await desk.client.get("/api/v1/agents/me", headers=staff("alice"))).json()
    mine = await desk.client.put("/api/v1/agents/alice/state", headers=staff("alice"), json={"state": "available"})
    assert mine.status_code == 200 and mine.json()["state"] == "available"
    assert mine.json()["state_since"] > before["state_since"]
    same = await desk.client.put("/api/v1/agents/alice/state", headers=staff("alice"), json={"state": "available"})
    assert same.json()["state_since"] == mine.json()["state_since"]  # no change, no new timestamp

    theirs = await desk.client.put("/api/v1/agents/bob/state", headers=staff("alice"), json={"state": "break"})
    assert theirs.status_code == 403 and theirs.json()["code"] == "not_your_state"
    supervised = await desk.client.put("/api/v1/agents/bob/state", headers=staff("sue", "supervisor"),
                                       json={"state": "break"})
    assert supervised.status_code == 200 and supervised.json()["state"] == "break"

    follows = await desk.client.put("/api/v1/agents/alice/state", headers=staff("alice"), json={"state": "on_call"})
    assert follows.status_code == 409 and follows.json()["code"] == "state_follows_calls"
    bad = await desk.client.put("/api/v1/agents/alice/state", headers=staff("alice"), json={"state": "lunch"})
    assert bad.status_code == 422
    missing = await desk.client.put("/api/v1/agents/zed/state", headers=ADMIN, json={"state": "break"})
    assert missing.status_code == 404

    # Each change is published for live views on every replica.
    js = desk.app.state.messaging.js

    async def published() -> list[dict]:
        info = await js.stream_info("DESK")
        found = []
        if info.state.messages == 0:  # nothing yet (first_seq is 0, which get_msg refuses)
            return []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            msg = await js.get_msg("DESK", seq)
            if msg.subject == "desk.agent.state_changed.v1":
                found.append(Envelope.model_validate_json(msg.data).data)
        return found if len(found) >= 2 else []

    changes = await wait_until(published)
    assert [(c["username"], c["previous_state"], c["state"]) for c in changes] == [
        ("alice", "offline", "available"), ("bob", "offline", "break")]
