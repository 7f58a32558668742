"""Callback work and account management in the browser: a displaced appointment (made by booking and then
PUTting a rota without its session with the practice's key) turns up on an agent's open callback list by
itself; a practice's overdue request stands out; a supervisor adds, resets and disables an account."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest
from playwright.sync_api import expect

from callcentre.seed import rota_for
from tests.ui.conftest import CHROMIUM, Staff, require_chromium

pytestmark = pytest.mark.e2e


def spaced(nhs_number: str) -> str:
    return f"{nhs_number[:3]} {nhs_number[3:6]} {nhs_number[6:]}"


def test_a_displaced_appointment_becomes_a_callback_an_agent_works(staff: Staff, screenshot) -> None:
    patient = next(p for p in staff.demo["demo_patients"] if p["ods_code"] == "Y90002")
    ods, key = patient["ods_code"], {"X-API-Key": staff.demo["api_keys"]["Y90002"]}
    agent = staff.sign_in("agent4", expect_path="/")
    agent.get_by_role("link", name="Callbacks").click()
    expect(agent.locator("#live-status")).to_have_attribute("data-live", "on")
    tasks = agent.locator(".task")

    # Another practice asks the centre to ring one of its patients (with its own key), already overdue.
    requested = next(p for p in staff.demo["demo_patients"] if p["ods_code"] == "Y90006")
    overdue = httpx.post(f"{staff.stack.url}/api/v1/callbacks", timeout=20,
                         headers={"X-API-Key": staff.demo["api_keys"]["Y90006"]},
                         json={"ods_code": "Y90006", "nhs_number": requested["nhs_number"],
                               "reason": "Ring this patient to book a blood test",
                               "due_by": (datetime.now(UTC) - timedelta(hours=1)).isoformat()})
    assert overdue.status_code == 201, overdue.text
    with staff.api("agent4") as api:
        # A booking whose session the practice then takes out of its rota.
        slot = api.get("/api/v1/slots", params={"practice": ods, "slot_type": "NURSE", "limit": 1}).json()["items"][0]
        booked = api.post("/api/v1/appointments", json={"slot_id": slot["id"], "nhs_number": patient["nhs_number"]})
        assert booked.status_code == 201, booked.text
    day = date.fromisoformat(slot["start"][:10])
    rota = rota_for(ods, day, 1)
    rota["sessions"] = [s for s in rota["sessions"] if not s["session_id"].endswith("-NUR-AM")]
    changed = httpx.put(f"{staff.stack.url}/api/v1/rotas/{ods}", json=rota, headers=key, timeout=20)
    assert changed.status_code == 200 and changed.json()["displaced"] == 1, changed.text

    # Both arrive on the open page without a reload; the overdue one first and marked.
    displaced = tasks.filter(has_text=spaced(patient["nhs_number"]))
    expect(displaced).to_have_count(1, timeout=15_000)
    expect(displaced).to_contain_text("Displaced appointment")
    expect(displaced).to_contain_text("removed by a rota change")
    expect(tasks.first).to_have_attribute("data-overdue", "true")
    expect(tasks.first).to_contain_text("Overdue")
    expect(tasks.first).to_contain_text("Request from the practice")
    screenshot(agent, "11-callbacks")

    displaced.get_by_role("button", name="Claim").click()
    expect(displaced).to_have_attribute("data-status", "claimed")
    expect(displaced).to_contain_text("Claimed by you")
    displaced.get_by_role("button", name="Log attempt").click()
    note = displaced.get_by_label("What happened on this attempt")
    expect(note).to_be_focused()
    note.fill("No answer; left a voicemail")
    note.press("Enter")
    expect(displaced).to_contain_text("1 attempt")
    screenshot(agent, "12-callbacks-claimed")

    displaced.get_by_role("button", name="Complete").click()
    displaced.get_by_label("Outcome").fill("Rebooked for the following week")
    displaced.get_by_label("Outcome").press("Enter")
    expect(displaced).to_have_count(0)  # off the outstanding list
    agent.get_by_label("Show").select_option("completed")
    done = tasks.filter(has_text=spaced(patient["nhs_number"]))
    expect(done).to_contain_text("Rebooked for the following week")
    expect(done).to_have_attribute("data-status", "completed")


def test_a_supervisor_adds_resets_and_disables_an_account(staff: Staff, screenshot) -> None:
    supervisor = staff.sign_in("supervisor1", expect_path="/supervisor")
    supervisor.get_by_role("link", name="Agents").click()
    expect(supervisor.locator("#agents-table")).to_be_visible()
    expect(supervisor.get_by_role("button", name="Add account")).to_be_enabled()  # agents.js handles the form
    supervisor.get_by_label("Username").fill("agent9")
    supervisor.get_by_label("Display name").fill("Isla Agent")
    supervisor.get_by_label("First password").fill("first-password-9")
    supervisor.get_by_label("First password").press("Enter")
    row = supervisor.locator('#agents-table tr[data-username="agent9"]')
    expect(row).to_contain_text("Isla Agent")
    expect(supervisor.get_by_label("Username")).to_be_focused()  # ready for the next one

    row.get_by_role("button", name="Reset password of agent9").click()
    new_password = row.get_by_label("New password for agent9")
    new_password.fill("second-password-9")
    new_password.press("Enter")
    expect(supervisor.locator("#agents-status")).to_contain_text("password of agent9 is reset")

    def sign_in_status(password: str) -> int:
        return httpx.post(f"{staff.stack.url}/api/v1/auth/token", json={"username": "agent9", "password": password},
                          timeout=20).status_code

    assert sign_in_status("first-password-9") == 401
    assert sign_in_status("second-password-9") == 200
    token = httpx.post(f"{staff.stack.url}/api/v1/auth/token", timeout=20,
                       json={"username": "agent9", "password": "second-password-9"}).json()["access_token"]
    supervisor.locator('#agents-table tr[data-username="agent9"]').get_by_role("button", name="Disable agent9").click()
    expect(supervisor.locator('#agents-table tr[data-username="agent9"]')).to_have_attribute("data-active", "false")
    assert sign_in_status("second-password-9") == 401
    # The shift-long token agent9 already holds stops working too: the gateway asks the desk (hazard log H16).
    refused = httpx.get(f"{staff.stack.url}/api/v1/agents/me", headers={"Authorization": f"Bearer {token}"},
                        timeout=20)
    assert refused.status_code == 401 and refused.json()["code"] == "account_disabled"
    # Supervisors manage agents only: no buttons on the admin's or their own row.
    expect(supervisor.locator('#agents-table tr[data-username="supervisor1"] button')).to_have_count(0)
    screenshot(supervisor, "14-supervisor-agents")
    supervisor.get_by_role("button", name="Sign out").click()
    expect(supervisor).to_have_url(f"{staff.stack.url}/login")
    assert "cc_session" not in {c["name"] for c in supervisor.context.cookies()}
    supervisor.goto("/supervisor")
    expect(supervisor).to_have_url(f"{staff.stack.url}/login")

    agent = staff.sign_in("agent1", expect_path="/")
    agent.goto("/supervisor/agents")
    expect(agent.locator("h1")).to_have_text("Supervisors only")


def test_forms_that_scripts_submit_cannot_be_submitted_before_their_script_has_run(staff: Staff) -> None:
    """Submitted natively, the new-account form would put the first password in the URL (and the history): its
    button, like the callback filter's, is disabled until the page's script handles the form."""
    supervisor = staff.sign_in("supervisor1", expect_path="/supervisor")
    for path, script, button in (("/supervisor/agents", "agents", "Add account"), ("/callbacks", "callbacks", "Show")):
        blocked = re.compile(rf".*/js/{script}\.js.*")
        supervisor.route(blocked, lambda route: route.abort())
        supervisor.goto(path)
        expect(supervisor.get_by_role("button", name=button, exact=True)).to_be_disabled()
        supervisor.unroute(blocked)
        supervisor.reload()
        expect(supervisor.get_by_role("button", name=button, exact=True)).to_be_enabled()


def test_the_ui_tests_fail_rather_than_skip_without_chromium(tmp_path) -> None:
    missing = tmp_path / "chromium"
    with pytest.raises(pytest.fail.Exception, match=f"Chromium is missing at {missing}"):
        require_chromium(missing)
    assert require_chromium(CHROMIUM) == CHROMIUM
