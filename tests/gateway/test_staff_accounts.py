"""A staff token is only as good as its account (hazard log H16): the real gateway process asks the desk (here the
fake desk) whether the account is still active with the token's role, remembers the answer briefly, and keeps
the centre running on its last answers when the desk cannot be asked."""

from __future__ import annotations

import asyncio
import time

import httpx

from tests.gateway.conftest import bearer, start_gateway, staff_token
from tests.support.apps import wait_until

PATH = "/api/v1/practices/A81001"  # served by the fake registry
CACHE_SECONDS = 2.0


async def test_a_disabled_or_demoted_account_is_refused_within_seconds(upstreams, log_dir):
    desk = upstreams["desk"].url

    def control(action: str, **body) -> dict:
        return httpx.post(f"{desk}/_control/{action}", json=body).json()

    gateway = start_gateway(upstreams, log_dir, staff_status_cache_seconds=str(CACHE_SECONDS))
    try:
        async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as client:
            leaver_token = staff_token("agent", "leaver")  # valid for ten minutes
            leaver = {"Authorization": f"Bearer {leaver_token}"}
            asked = control("count")["staff_calls"]
            for _ in range(4):
                assert (await client.get(PATH, headers=leaver)).status_code == 200
            assert control("count")["staff_calls"] == asked + 1  # one question per account and cache period

            control("staff", username="leaver", active=False)
            disabled_at = time.monotonic()

            async def refused() -> httpx.Response | None:
                response = await client.get(PATH, headers=leaver)
                return response if response.status_code == 401 else None

            response = await wait_until(refused, timeout=10, interval=0.1)
            assert time.monotonic() - disabled_at < CACHE_SECONDS + 3
            assert response.json()["code"] == "account_disabled"
            # The same token as the UI's session cookie is refused too, and the UI's pages see nobody signed in.
            cookie = {"cc_session": leaver_token}
            assert (await client.get("/api/v1/calls", cookies=cookie)).json()["code"] == "account_disabled"
            assert (await client.get("/", cookies=cookie)).json()["identity"] is None

            # A supervisor demoted to agent: the old supervisor token is refused at once; a fresh one works.
            control("staff", username="demoted", role="agent")
            old = await client.get(PATH, headers=bearer("supervisor", "demoted"))
            assert old.status_code == 401 and old.json()["code"] == "role_changed"
            assert (await client.get(PATH, headers=bearer("agent", "demoted"))).status_code == 200

            # The desk cannot answer: its last answers stand and unknown tokens pass, so the centre keeps working.
            control("staff-status", status=500)
            await asyncio.sleep(CACHE_SECONDS + 0.2)
            assert (await client.get(PATH, headers=leaver)).status_code == 401
            assert (await client.get(PATH, headers=bearer("agent", "demoted"))).status_code == 200
            assert (await client.get(PATH, headers=bearer("agent", "newcomer"))).status_code == 200
            control("staff-status", status=None)

            control("staff", username="leaver", active=True)  # re-enabled: the same token works again

            async def accepted() -> bool:
                return (await client.get(PATH, headers=leaver)).status_code == 200

            await wait_until(accepted, timeout=10, interval=0.1)
    finally:
        control("staff-status", status=None)
        for username in ("leaver", "demoted"):
            control("staff", username=username)
        gateway.stop()


async def test_an_agent_at_work_never_waits_for_the_account_check(upstreams, log_dir):
    """Near the end of its period the desk's last answer is still used while the desk is asked again, so a
    request does not wait for that question; the new answer then serves the next period."""
    desk = upstreams["desk"].url
    period = 4.0  # refreshed in its last 30%: from 2.8 s on

    def control(action: str, **body) -> dict:
        return httpx.post(f"{desk}/_control/{action}", json=body).json()

    gateway = start_gateway(upstreams, log_dir, staff_status_cache_seconds=str(period))
    try:
        async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as client:
            worker = bearer("agent", "worker")
            asked = control("count")["staff_calls"]
            assert (await client.get(PATH, headers=worker)).status_code == 200
            answered_at = time.monotonic()
            assert control("count")["staff_calls"] == asked + 1

            control("staff-hold", hold=True)  # from now on the desk keeps its answers back
            await asyncio.sleep(period * 0.8 - (time.monotonic() - answered_at))
            # Answered while the desk has not answered the new question: the request did not wait for it.
            assert (await client.get(PATH, headers=worker)).status_code == 200
            assert control("count")["staff_calls"] == asked + 2
            assert (await client.get(PATH, headers=worker)).status_code == 200  # asked once, not per request
            assert control("count")["staff_calls"] == asked + 2

            control("staff-hold", hold=False)
            await asyncio.sleep(period * 0.3)  # past the first answer's period: the new one serves
            assert (await client.get(PATH, headers=worker)).status_code == 200
            assert control("count")["staff_calls"] == asked + 2
    finally:
        control("staff-hold", hold=False)
        gateway.stop()
