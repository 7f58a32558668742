"""POST /internal/v1/staff/verify: the gateway asks whether the account behind a staff token is still active with
the token's role, so a disabled or demoted account stops working within seconds (hazard H16)."""

from __future__ import annotations

from tests.agent_desk_svc.conftest import ADMIN_USER, Desk, staff
from tests.support.apps import identity

GATEWAY = identity("service", "gateway")
VERIFY = "/internal/v1/staff/verify"


async def test_the_gateway_can_ask_whether_an_account_is_active(desk: Desk) -> None:
    await desk.create_agent("leaver")
    await desk.create_agent("sue", role="supervisor")

    async def verify(username: str, role: str, caller=GATEWAY) -> tuple[int, str | None]:
        response = await desk.client.post(VERIFY, headers=caller, json={"username": username, "role": role})
        return response.status_code, (response.json().get("code") if response.status_code != 200 else None)

    ok = await desk.client.post(VERIFY, headers=GATEWAY, json={"username": "Leaver", "role": "agent"})
    assert ok.status_code == 200 and ok.json() == {"username": "leaver", "role": "agent", "active": True}
    assert await verify(ADMIN_USER, "admin") == (200, None)

    admin = identity("admin", ADMIN_USER)
    assert (await desk.client.patch("/api/v1/agents/leaver", headers=admin, json={"active": False})).status_code == 200
    assert await verify("leaver", "agent") == (401, "account_disabled")
    assert (await desk.client.patch("/api/v1/agents/sue", headers=admin, json={"role": "agent"})).status_code == 200
    assert await verify("sue", "supervisor") == (401, "role_changed")  # a token from before the demotion
    assert await verify("sue", "agent") == (200, None)
    assert await verify("nobody", "agent") == (401, "unknown_account")
    assert (await desk.client.patch("/api/v1/agents/leaver", headers=admin, json={"active": True})).status_code == 200
    assert await verify("leaver", "agent") == (200, None)

    # Only internal callers ask; bad bodies are a 422; the gateway does not route /internal at all.
    for caller in (staff("sue"), admin, identity("practice", "key-a", "A81001")):
        assert (await verify("leaver", "agent", caller))[0] == 403
    assert (await desk.client.post(VERIFY, json={"username": "leaver", "role": "agent"})).status_code == 401
    assert (await desk.client.post(VERIFY, headers=GATEWAY, json={"username": "leaver"})).status_code == 422
    assert (await desk.client.post(VERIFY, headers=GATEWAY, json={"username": "x" * 300, "role": "agent"})
            ).status_code == 422
