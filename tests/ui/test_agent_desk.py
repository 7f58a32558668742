"""An agent's call on one screen, in real Chromium against the real stack: sign in, take a call, find the
patient, check red flags, search and hold a slot, book, wrap up. Other people watch live: a second agent's open
search loses the slot, the supervisor's dashboard counts the booking, both without reloading."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.ui.conftest import Staff

pytestmark = pytest.mark.e2e

SLOT_ROWS = "#slot-results tr[data-slot-id]"


def spaced(nhs_number: str) -> str:
    return f"{nhs_number[:3]} {nhs_number[3:6]} {nhs_number[6:]}"


def take_a_call(page: Page) -> None:
    page.get_by_role("button", name="Available", exact=True).click()
    expect(page.locator("#state-pill")).to_have_text("Available")
    page.get_by_role("button", name="New call").click()
    expect(page.locator("#state-pill")).to_have_text("On a call")
    expect(page.get_by_label("NHS number")).to_be_focused()  # ready to type


def find_by_nhs_number(page: Page, typed: str) -> None:
    page.get_by_label("NHS number").fill(typed)
    page.get_by_label("NHS number").press("Enter")
    expect(page.locator("#patient-card")).to_be_visible()


def search_nurse_slots(page: Page, *, include_pcn: bool = False) -> None:
    page.get_by_label("Slot type").select_option(label="Practice nurse")
    if include_pcn:
        page.get_by_label("Include PCN partners").check()
    page.get_by_role("button", name="Search slots").click()
    expect(page.locator(SLOT_ROWS).first).to_be_visible()


def test_an_agent_books_a_slot_while_another_agent_and_a_supervisor_watch(staff: Staff, screenshot) -> None:
    patients = {p["ods_code"]: p for p in staff.demo["demo_patients"]}
    patient, neighbour = patients["Y90001"], patients["Y90004"]  # two practices of one PCN in the demo region

    supervisor = staff.sign_in("supervisor1", expect_path="/supervisor")
    expect(supervisor.locator("#live-status")).to_have_attribute("data-live", "on")
    bookings_before = int(supervisor.locator("#bookings-total").inner_text())
    supervisor.evaluate("window.sameDocument = true")  # gone if the page reloads

    # A second agent has an open search of nurse slots across the PCN, which includes the first agent's practice.
    other = staff.sign_in("agent2", expect_path="/")
    take_a_call(other)
    find_by_nhs_number(other, neighbour["nhs_number"])
    other.get_by_role("button", name="None of these — continue").click()
    search_nurse_slots(other, include_pcn=True)
    expect(other.locator("#live-status")).to_have_attribute("data-live", "on")

    agent = staff.sign_in("agent1", expect_path="/", login_screenshot="01-sign-in")
    cookies = {c["name"]: c for c in agent.context.cookies()}
    assert cookies["cc_session"]["httpOnly"] and cookies["cc_session"]["sameSite"] == "Strict"
    assert not cookies["cc_csrf"]["httpOnly"] and cookies["cc_csrf"]["sameSite"] == "Strict"
    assert "cc_session" not in agent.evaluate("document.cookie")  # scripts cannot read the session
    # The gateway refuses a cookie-authenticated change without the CSRF header (what a forged request lacks).
    forged = agent.evaluate("""() => fetch('/api/v1/calls', {method: 'POST', body: '{}',
        headers: {'Content-Type': 'application/json'}}).then(r => r.json().then(b => [r.status, b.code]))""")
    assert forged == [403, "csrf_failed"]
    take_a_call(agent)

    # Spaced NHS number, typed and submitted with Enter; the registered practice and its notes show.
    agent.keyboard.type(spaced(patient["nhs_number"]))
    agent.keyboard.press("Enter")
    card = agent.locator("#patient-card")
    expect(card).to_be_visible()
    expect(card).to_contain_text(patient["family"])
    expect(agent.locator("#patient-practice")).to_contain_text("Abbey Road Surgery (Y90001)")
    expect(agent.locator("#notes-for-agents")).to_contain_text("Blood tests only before 11:00")
    expect(agent.get_by_role("button", name="Search slots")).to_be_disabled()  # red-flag check first
    screenshot(agent, "02-desk-patient-found")

    clear = agent.get_by_role("button", name="None of these — continue")
    expect(clear).to_be_focused()
    agent.keyboard.press("Enter")
    search_nurse_slots(agent)
    first = agent.locator(SLOT_ROWS).first
    slot_id = first.get_attribute("data-slot-id")
    watched = other.locator(f'{SLOT_ROWS}[data-slot-id="{slot_id}"]')
    expect(watched).to_have_count(1)  # the other agent can see this slot right now
    screenshot(agent, "03-desk-slot-search")

    first.get_by_role("button", name=re.compile("^Hold")).click()
    expect(agent.locator("#hold-panel")).to_be_visible()
    # Taken by this agent's hold: pushed over SSE, it disappears from the other agent's open search.
    expect(watched).to_have_count(0, timeout=2000)
    expect(agent.locator("#hold-remaining")).to_have_text(re.compile(r"^(2:00|1:[0-5]\d)$"))
    expect(agent.get_by_role("button", name="Book this appointment")).to_be_focused()
    screenshot(agent, "04-desk-hold-countdown")
    screenshot(other, "05-second-agent-search-after-slot-taken")

    agent.get_by_label("Reason for the appointment").fill("Blood pressure review")
    agent.get_by_label("Reason for the appointment").press("Enter")
    expect(agent.locator("#booked-panel")).to_be_visible()
    reference = agent.locator("#booking-reference").inner_text()
    assert re.fullmatch(r"[A-Z0-9]{6,12}", reference), reference
    expect(agent.locator("#appointments")).to_contain_text(reference)  # upcoming appointments, reloaded
    expect(agent.get_by_label("Outcome")).to_have_value("booked")
    screenshot(agent, "06-desk-booked")

    agent.get_by_role("button", name="Wrap up call").click()
    expect(agent.locator("#state-pill")).to_have_text("Wrap-up")
    expect(agent.locator("#handle-time")).to_have_text(re.compile(r"^\d+:\d\d$"))
    screenshot(agent, "07-desk-wrapped-up")
    agent.get_by_role("button", name="Back to available").click()
    expect(agent.locator("#state-pill")).to_have_text("Available")
    expect(agent.get_by_role("button", name="New call")).to_be_focused()

    with staff.api("agent1") as api:
        booked = api.get("/api/v1/appointments", params={"nhs_number": patient["nhs_number"]}).json()["items"]
        appointment = next(a for a in booked if a["booking_reference"] == reference)
        assert appointment["status"] == "booked" and appointment["slot_id"] == slot_id
        assert appointment["reason"] == "Blood pressure review"
        call = api.get("/api/v1/calls", params={"agent": "agent1"}).json()["items"][0]
        assert call["disposition"] == "booked" and call["appointment_id"] == appointment["id"]
        assert call["nhs_number"] == patient["nhs_number"] and call["practice"] == "Y90001"
        assert call["handle_seconds"] > 0

    # The supervisor's dashboard moved on its own (server-sent events), without a reload.
    expect(supervisor.locator("#bookings-total")).to_have_text(str(bookings_before + 1), timeout=15_000)
    expect(supervisor.locator('#practice-figures tr[data-practice="Y90001"] [data-figure="booked"]')).to_have_text("1")
    expect(supervisor.locator("#state-available")).not_to_have_text("0")
    assert supervisor.evaluate("window.sameDocument") is True
    screenshot(supervisor, "08-supervisor-dashboard")

    other.get_by_label("Outcome").select_option("advice_given")
    other.get_by_role("button", name="Wrap up call").click()
    expect(other.locator("#state-pill")).to_have_text("Wrap-up")


def test_a_red_flag_answer_blocks_booking_and_the_call_ends_as_999(staff: Staff, screenshot) -> None:
    patient = staff.demo["demo_patients"][2]
    agent = staff.sign_in("agent3", expect_path="/")
    take_a_call(agent)
    agent.get_by_label("Family name").fill(patient["family"])
    year, month, day = patient["birth_date"].split("-")
    agent.get_by_label("Date of birth").fill(f"{day}/{month}/{year}")
    agent.get_by_label("Date of birth").press("Enter")
    expect(agent.locator("#patient-card")).to_be_visible()
    expect(agent.locator("#patient-card")).to_contain_text(f"NHS {patient['nhs_number'][:3]}")

    # First no red flags: slots are offered...
    agent.keyboard.press("Enter")  # focus is on "None of these — continue"
    search_nurse_slots(agent)
    # ...then the caller mentions chest pain.
    agent.get_by_role("button", name="Yes — ring 999").focus()
    agent.keyboard.press("Enter")
    expect(agent.locator("#redflag-result")).to_contain_text("ring 999 now. Do not book.")
    expect(agent.locator(SLOT_ROWS)).to_have_count(0)
    expect(agent.get_by_role("button", name="Search slots")).to_be_disabled()
    expect(agent.locator("#slots-blocked")).to_contain_text("Booking is blocked")
    expect(agent.get_by_role("button", name=re.compile("^Hold"))).to_have_count(0)
    expect(agent.get_by_label("Outcome")).to_have_value("red_flag_999")
    expect(agent.locator('#disposition option[value="booked"]')).to_be_disabled()
    expect(agent.locator('#disposition option[value="redirected_999"]')).to_be_enabled()
    screenshot(agent, "09-desk-red-flag")

    agent.get_by_label("Notes").fill("Chest pain since this morning; told to ring 999")
    agent.get_by_label("Notes").press("Enter")
    expect(agent.locator("#state-pill")).to_have_text("Wrap-up")
    with staff.api("agent3") as api:
        call = api.get("/api/v1/calls", params={"agent": "agent3"}).json()["items"][0]
    assert call["disposition"] == "red_flag_999" and not call["open"]
    assert call["nhs_number"] == patient["nhs_number"] and call["appointment_id"] is None

    # Next call: no slot suits the patient, so the agent promises a call back at release time.
    agent.get_by_role("button", name="Back to available").click()
    take_a_call(agent)
    caller = staff.demo["demo_patients"][4]
    find_by_nhs_number(agent, caller["nhs_number"])
    agent.get_by_role("button", name="None of these — continue").click()
    agent.get_by_role("button", name="Search slots").click()
    expect(agent.locator("#slot-results")).not_to_be_empty()
    screenshot(agent, "10-desk-search-with-embargo-note")  # the note shows when unreleased slots match
    agent.get_by_label("Outcome").select_option("no_slot_callback")
    agent.get_by_role("button", name="Wrap up call").click()
    expect(agent.locator("#state-pill")).to_have_text("Wrap-up")
    with staff.api("agent3") as api:
        tasks = api.get("/api/v1/callbacks", params={"status": "open", "practice": caller["ods_code"]}).json()["items"]
    promised = [t for t in tasks if t["nhs_number"] == caller["nhs_number"]]
    assert len(promised) == 1 and promised[0]["source"] == "staff"
    assert promised[0]["reason"].startswith("No slot on the call")


def test_an_agent_moves_and_then_cancels_a_patients_appointment(staff: Staff, screenshot) -> None:
    patient = next(p for p in staff.demo["demo_patients"] if p["ods_code"] == "Y90007")
    with staff.api("agent1") as api:
        slot = api.get("/api/v1/slots", params={"practice": "Y90007", "slot_type": "GP-ROUTINE", "limit": 1}
                       ).json()["items"][0]
        original = api.post("/api/v1/appointments", json={"slot_id": slot["id"], "nhs_number": patient["nhs_number"]})
        assert original.status_code == 201, original.text
    agent = staff.sign_in("agent1", expect_path="/")
    take_a_call(agent)
    find_by_nhs_number(agent, patient["nhs_number"])
    row = agent.locator(f'#appointments tr[data-appointment-id="{original.json()["id"]}"]')
    expect(row).to_contain_text(original.json()["booking_reference"])
    expect(row.get_by_role("button", name=re.compile("^Reschedule"))).to_be_disabled()  # red-flag check first
    agent.get_by_role("button", name="None of these — continue").click()

    row.get_by_role("button", name=re.compile("^Reschedule")).click()
    expect(agent.locator("#reschedule-banner")).to_contain_text("Moving the appointment")
    agent.get_by_label("Slot type").select_option(label="GP telephone consultation")
    agent.get_by_label("How").select_option("telephone")
    agent.get_by_role("button", name="Search slots").click()
    first = agent.locator(SLOT_ROWS).first
    expect(first).to_contain_text("Telephone")
    first.get_by_role("button", name=re.compile("^Hold")).click()
    agent.get_by_role("button", name="Move the appointment here").click()
    expect(agent.locator("#booked-panel")).to_contain_text("Appointment moved")
    moved_reference = agent.locator("#booking-reference").inner_text()
    expect(row).to_contain_text("Rescheduled")
    expect(agent.get_by_label("Outcome")).to_have_value("rescheduled")

    moved = agent.locator("#appointments tr", has_text=moved_reference)
    moved.get_by_role("button", name=re.compile("^Cancel")).click()
    agent.get_by_label("Reason for cancelling").fill("Feeling better")
    agent.get_by_label("Reason for cancelling").press("Enter")
    expect(moved).to_contain_text("Cancelled")
    expect(agent.get_by_label("Outcome")).to_have_value("cancelled")
    screenshot(agent, "13-desk-rescheduled-and-cancelled")
    agent.get_by_role("button", name="Wrap up call").click()
    expect(agent.locator("#state-pill")).to_have_text("Wrap-up")

    with staff.api("agent1") as api:
        statuses = {a["booking_reference"]: a["status"]
                    for a in api.get("/api/v1/appointments", params={"nhs_number": patient["nhs_number"]}).json()["items"]}
    assert statuses == {original.json()["booking_reference"]: "rescheduled", moved_reference: "cancelled"}


def test_the_desks_controls_stay_disabled_until_its_script_has_wired_them(staff: Staff) -> None:
    """A click that lands before desk.js has run does nothing, silently: in one CI run an agent's "Available"
    click did exactly that and the agent stayed Offline. So the state and New call buttons come disabled from the
    server and the script enables them (every take_a_call above then waits for them to be enabled)."""
    agent = staff.sign_in("agent1", expect_path="/")
    agent.route(re.compile(r".*/js/desk\.js.*"), lambda route: route.abort())
    agent.reload()
    for name in ("Available", "Break", "Offline", "New call"):
        expect(agent.get_by_role("button", name=name, exact=True)).to_be_disabled()
    # Enter in the NHS number would submit natively and put the number in the address bar and the history.
    expect(agent.get_by_label("NHS number")).to_be_disabled()
    agent.unroute(re.compile(r".*/js/desk\.js.*"))
    agent.reload()
    expect(agent.locator("[data-state-choice][aria-pressed]")).to_have_count(3)  # the script's render() has run
