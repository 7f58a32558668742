"""The UI's server side: signing in and out through the form (CSRF-protected, setting the session cookies), and
who may see which page. Runs the real app on SQLite and PostgreSQL with a real nats-server."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import jwt

from services.auth import STAFF_AUDIENCE
from tests.agent_desk_svc.conftest import Desk, staff
from tests.support.apps import practice

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@asynccontextmanager
async def browser(desk: Desk, **headers: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client with its own cookie jar, as a browser would have."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=desk.app), base_url="http://testserver",
                                 headers=headers) as client:
        yield client


def set_cookies(response: httpx.Response) -> dict[str, str]:
    """Each Set-Cookie header by cookie name."""
    return {h.split("=", 1)[0]: h for h in response.headers.get_list("set-cookie")}


def hidden_token(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "the form carries no CSRF token"
    return match.group(1)


async def test_sign_in_form_needs_its_csrf_token_and_sets_the_session_cookies(desk: Desk) -> None:
    await desk.create_agent("ui.agent", password="ui-agent-password-1")
    async with browser(desk) as client:
        page = await client.get("/login")
        assert page.status_code == 200
        assert 'for="username"' in page.text and 'for="password"' in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]
        token = client.cookies["cc_csrf"]
        assert hidden_token(page.text) == token
        assert "httponly" not in set_cookies(page)["cc_csrf"].lower()  # scripts read it
        good = {"username": "ui.agent", "password": "ui-agent-password-1"}

        # A cross-site form post carries no token (and SameSite=Strict keeps the cookie home): refused.
        async with browser(desk) as other_site:
            forged = await other_site.post("/login", data=good, headers=FORM)
        assert forged.status_code == 403 and "cc_session" not in set_cookies(forged)
        wrong_token = await client.post("/login", data={**good, "csrf_token": "x" * 43}, headers=FORM)
        assert wrong_token.status_code == 403 and "cc_session" not in set_cookies(wrong_token)
        assert "expired" in wrong_token.text

        token = client.cookies["cc_csrf"]  # a refused form gets a fresh token
        wrong_password = await client.post("/login", data={**good, "password": "not-the-password",
                                                           "csrf_token": token}, headers=FORM)
        assert wrong_password.status_code == 401 and "cc_session" not in set_cookies(wrong_password)
        assert "username or password is wrong" in wrong_password.text
        assert 'value="ui.agent"' in wrong_password.text  # the name stays filled in; the password never does

        token = client.cookies["cc_csrf"]
        signed_in = await client.post("/login", data={**good, "csrf_token": token}, headers=FORM)
        assert signed_in.status_code == 303 and signed_in.headers["location"] == "/"
        cookies = set_cookies(signed_in)
        session = cookies["cc_session"].lower()
        assert "httponly" in session and "samesite=strict" in session and "path=/" in session
        assert f"max-age={desk.settings.token_ttl_seconds}" in session and "secure" not in session
        claims = jwt.decode(client.cookies["cc_session"], desk.settings.jwt_secret.get_secret_value(),
                            algorithms=["HS256"], audience=STAFF_AUDIENCE)
        assert claims["sub"] == "ui.agent" and claims["role"] == "agent"
        # A new CSRF token once signed in: one planted before sign-in is worthless afterwards.
        assert "samesite=strict" in cookies["cc_csrf"].lower() and client.cookies["cc_csrf"] != token

    async with browser(desk, **{"X-Forwarded-Proto": "https"}) as client:  # behind TLS the cookies are Secure
        token = hidden_token((await client.get("/login")).text)
        # (httpx keeps Secure cookies off this plain-HTTP test connection, so send it as the browser would)
        response = await client.post("/login", data={**good, "csrf_token": token},
                                     headers={**FORM, "Cookie": f"cc_csrf={token}"})
        assert response.status_code == 303
        assert all("secure" in c.lower() for c in set_cookies(response).values())
    assert "ui-agent-password-1" not in desk.logs.getvalue()


async def test_supervisors_land_on_the_dashboard_and_pages_need_staff(desk: Desk) -> None:
    await desk.create_agent("ui.sue", role="supervisor", password="ui-sue-password-1")
    async with browser(desk) as client:
        await client.get("/login")
        response = await client.post("/login", data={"username": "UI.Sue", "password": "ui-sue-password-1",
                                                     "csrf_token": client.cookies["cc_csrf"]}, headers=FORM)
        assert response.status_code == 303 and response.headers["location"] == "/supervisor"

    async with browser(desk) as client:
        for path in ("/", "/callbacks", "/supervisor", "/supervisor/agents"):
            anonymous = await client.get(path)
            assert anonymous.status_code == 303 and anonymous.headers["location"] == "/login", path
        practice_key = await client.get("/", headers=practice("A81001"))  # a practice's key is not staff
        assert practice_key.status_code == 303
        ghost = await client.get("/", headers=staff("nobody"))  # a token that outlived its account
        assert ghost.status_code == 303 and 'cc_session=""' in set_cookies(ghost)["cc_session"]

        await desk.create_agent("ui.al")
        desk_page = await client.get("/", headers=staff("ui.al"))
        assert desk_page.status_code == 200
        assert '<label for="nhs-number">NHS number</label>' in desk_page.text
        assert desk_page.headers["cache-control"] == "no-store"
        assert "frame-ancestors 'none'" in desk_page.headers["content-security-policy"]
        assert "<script>" not in desk_page.text  # no inline script: the policy would block it
        assert (await client.get("/callbacks", headers=staff("ui.al"))).status_code == 200
        refused = await client.get("/supervisor", headers=staff("ui.al"))
        assert refused.status_code == 403 and "supervisors" in refused.text
        assert (await client.get("/supervisor/agents", headers=staff("ui.al"))).status_code == 403

        board = await client.get("/supervisor", headers=staff("ui.sue", "supervisor"))
        assert board.status_code == 200 and 'id="calls-today"' in board.text
        assert (await client.get("/supervisor/agents", headers=staff("ui.sue", "supervisor"))).status_code == 200

        script = re.search(r'src="(/static/js/desk\.js\?v=[0-9a-f]+)"', desk_page.text)
        assert script, "the desk page loads its script with a content hash"
        served = await client.get(script.group(1))
        assert served.status_code == 200 and "javascript" in served.headers["content-type"]
        assert (await client.get("/static/../main.py")).status_code == 404


async def test_signing_out_needs_the_csrf_token_and_takes_the_agent_offline(desk: Desk) -> None:
    await desk.create_agent("ui.bo")
    me = staff("ui.bo")
    assert (await desk.client.put("/api/v1/agents/ui.bo/state", headers=me, json={"state": "available"})
            ).status_code == 200
    async with browser(desk) as client:
        await client.get("/login")
        token = client.cookies["cc_csrf"]
        client.cookies.set("cc_session", "a-session-token")
        forged = await client.post("/logout", headers={**me, **FORM}, data={})
        assert forged.status_code == 403
        assert (await desk.client.get("/api/v1/agents/me", headers=me)).json()["state"] == "available"

        out = await client.post("/logout", headers={**me, **FORM}, data={"csrf_token": token})
        assert out.status_code == 303 and out.headers["location"] == "/login"
        cleared = set_cookies(out)
        assert "max-age=0" in cleared["cc_session"].lower() and "max-age=0" in cleared["cc_csrf"].lower()
    assert (await desk.client.get("/api/v1/agents/me", headers=me)).json()["state"] == "offline"


async def test_a_call_closed_at_the_desk_records_who_it_was_about(desk: Desk) -> None:
    await desk.create_agent("ui.cy")
    me = staff("ui.cy")
    await desk.client.put("/api/v1/agents/ui.cy/state", headers=me, json={"state": "available"})
    call = (await desk.client.post("/api/v1/calls", headers=me, json={})).json()
    assert call["nhs_number"] is None
    closed = await desk.client.patch(f"/api/v1/calls/{call['id']}", headers=me, json={
        "disposition": "red_flag_999", "nhs_number": "943 476 5919", "practice": "a81001"})
    assert closed.status_code == 200, closed.text
    assert closed.json()["nhs_number"] == "9434765919" and closed.json()["practice"] == "A81001"
    bad = await desk.client.patch(f"/api/v1/calls/{call['id']}", headers=me, json={
        "disposition": "booked", "nhs_number": "1234567890"})
    assert bad.status_code == 422  # an invalid NHS number is refused before anything else

    # A patient named at pick-up is kept.
    await desk.client.put("/api/v1/agents/ui.cy/state", headers=me, json={"state": "available"})
    second = (await desk.client.post("/api/v1/calls", headers=me, json={"nhs_number": "9434765919"})).json()
    closed = await desk.client.patch(f"/api/v1/calls/{second['id']}", headers=me, json={
        "disposition": "advice_given", "nhs_number": "9990000018", "practice": "Y90001"})
    assert closed.json()["nhs_number"] == "9434765919" and closed.json()["practice"] == "Y90001"
