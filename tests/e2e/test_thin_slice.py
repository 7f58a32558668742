"""The walking skeleton, through the gateway only: a booking crosses every service."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from tests.e2e.conftest import PROCESS_NAMES, RunningStack, pid_alive, stop_stack

pytestmark = pytest.mark.e2e

ODS = "Q12345"
OTHER_ODS = "Y90001"  # a seeded demo practice
PATIENT = "9434765919"


def wait_for(predicate, timeout: float = 20.0, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval)


def test_the_stack_runs_every_component_and_seeds_a_demo_region(stack: RunningStack):
    pids = stack.pids()
    assert set(pids) == set(PROCESS_NAMES)
    assert all(pid_alive(pid) for pid in pids.values())
    assert stack.ports()["nats"] != 4222  # never the machine's own NATS
    for name in PROCESS_NAMES:
        assert (stack.data_dir / "logs" / f"{name}.log").exists()
    ready = httpx.get(f"{stack.url}/readyz", timeout=10)
    assert ready.status_code == 200, ready.text
    demo = json.loads((stack.data_dir / "demo.json").read_text())
    assert len(demo["practices"]) >= 10
    user, password = demo["logins"]["agent1"]
    token = httpx.post(f"{stack.url}/api/v1/auth/token", json={"username": user, "password": password}).json()
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    slots = httpx.get(f"{stack.url}/api/v1/slots", params={"practice": demo["practices"][0], "limit": 5}, headers=headers)
    assert slots.status_code == 200 and len(slots.json()["items"]) == 5
    found = httpx.get(f"{stack.url}/api/v1/patients", params={"nhs_number": demo["demo_patients"][0]["nhs_number"]},
                      headers=headers)
    assert found.status_code == 200 and found.json()["items"][0]["practice"]["ods_code"] == demo["practices"][0]


def test_a_booking_crosses_every_service(stack: RunningStack):
    client = httpx.Client(base_url=stack.url, timeout=20)
    admin = {"Authorization": f"Bearer {stack.admin_token()}"}

    # 1. Admin creates a practice and issues its API key.
    r = client.post("/api/v1/practices", json={"ods_code": ODS, "name": "Thin Slice Surgery", "pcn": "PCN-NORTH"},
                    headers=admin)
    assert r.status_code == 201, r.text
    key = client.post(f"/api/v1/practices/{ODS}/api-keys", headers=admin)
    assert key.status_code == 201
    practice = {"X-API-Key": key.json()["key"]}

    # 3. The practice syncs clinicians, slot types and patients, then PUTs a rota.
    assert client.put(f"/api/v1/practices/{ODS}/clinicians", headers=practice, json=[
        {"clinician_id": "C1", "name": "Dr One", "role": "gp", "gender": "female"}]).status_code == 200
    assert client.put(f"/api/v1/practices/{ODS}/slot-types", headers=practice, json=[
        {"code": "ROUTINE", "name": "Routine", "channel": "in_person", "bookable_by_centre": True,
         "max_days_ahead": 28, "min_notice_minutes": 0, "release": None, "shared_with_pcn": False}]).status_code == 200
    patients = client.put(f"/api/v1/practices/{ODS}/patients", headers=practice, json=[
        {"nhs_number": PATIENT, "family": "Jones", "given": "Ann", "birth_date": "1980-02-03"}])
    assert patients.status_code == 200, patients.text
    from datetime import date, timedelta

    day = date.today() + timedelta(days=2)
    rota = {"from": day.isoformat(), "to": (day + timedelta(days=1)).isoformat(), "sessions": [
        {"session_id": "S1", "clinician_id": "C1", "slot_type": "ROUTINE", "start": f"{day}T09:00:00",
         "end": f"{day}T10:00:00", "slot_minutes": 10}]}

    # 2. booking-svc learns of the practice, its clinicians and rules from registry events, not by asking.
    def put_rota():
        response = client.put(f"/api/v1/rotas/{ODS}", json=rota, headers=practice)
        return response if response.status_code == 200 else None

    first = wait_for(put_rota).json()
    assert first["created"] == 6
    again = client.put(f"/api/v1/rotas/{ODS}", json=rota, headers=practice).json()
    assert again == {**again, "created": 0, "removed": 0, "unchanged": 6, "displaced": 0}

    # 4. An agent created by the admin holds and books a slot; anyone else gets 409; cancelling frees it.
    for username in ("e2e-agent", "e2e-agent-2"):
        created = client.post("/api/v1/agents", headers=admin, json={
            "username": username, "password": "a-long-password", "display_name": username, "role": "agent"})
        assert created.status_code == 201, created.text
    agent = {"Authorization": "Bearer " + client.post("/api/v1/auth/token", json={
        "username": "e2e-agent", "password": "a-long-password"}).json()["access_token"]}
    agent2 = {"Authorization": "Bearer " + client.post("/api/v1/auth/token", json={
        "username": "e2e-agent-2", "password": "a-long-password"}).json()["access_token"]}

    slots = client.get("/api/v1/slots", params={"practice": ODS}, headers=agent).json()["items"]
    assert len(slots) == 6
    slot_id = slots[0]["id"]
    hold = client.post("/api/v1/holds", json={"slot_id": slot_id}, headers=agent)
    assert hold.status_code == 201, hold.text
    wait_for(lambda: client.get("/api/v1/patients", params={"nhs_number": PATIENT}, headers=agent).json()["items"])
    # booking-svc learns the registration from a registry event too
    def book():
        r = client.post("/api/v1/appointments", headers=agent, json={
            "slot_id": slot_id, "hold_id": hold.json()["hold_id"], "nhs_number": PATIENT, "reason": "cough"})
        return r if r.status_code != 409 or r.json().get("code") != "not_registered" else None

    booked = wait_for(book)
    assert booked.status_code == 201, booked.text
    appointment = booked.json()
    assert appointment["status"] == "booked"
    taken = client.post("/api/v1/appointments", headers=agent2, json={"slot_id": slot_id, "nhs_number": PATIENT})
    assert taken.status_code == 409 and taken.json()["code"] == "slot_taken"
    assert slot_id not in [s["id"] for s in client.get("/api/v1/slots", params={"practice": ODS}, headers=agent).json()["items"]]

    # 5. The practice's feed shows the booking; the dashboard counts it (from the booking event).
    feed = client.get(f"/api/v1/feed/{ODS}", headers=practice)
    assert feed.status_code == 200
    assert any(item.get("appointment_id", item.get("appointment", {}).get("id")) == appointment["id"]
               for item in feed.json()["items"]) or appointment["id"] in feed.text

    def counted():
        board = client.get("/api/v1/dashboard", headers=agent).json()
        return board["bookings_today_by_practice"].get(ODS) == 1

    wait_for(counted)

    cancelled = client.post(f"/api/v1/appointments/{appointment['id']}/cancel", json={"reason": "patient better"},
                            headers=agent)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    rebooked = client.post("/api/v1/appointments", headers=agent2, json={"slot_id": slot_id, "nhs_number": PATIENT})
    assert rebooked.status_code == 201, rebooked.text

    # 6. The gateway checks who is calling, and a client cannot pass itself off as someone else.
    assert client.get(f"/api/v1/feed/{OTHER_ODS}", headers=practice).status_code == 403
    assert client.get("/api/v1/slots", params={"practice": ODS}).status_code == 401
    assert client.post("/api/v1/practices", json={"ods_code": "Q54321", "name": "X"}, headers=agent).status_code == 403
    from services.auth import Principal, sign_identity

    forged = sign_identity(Principal("mallory", "admin"), "guessed-secret")
    spoof = client.post("/api/v1/practices", json={"ods_code": "Q54321", "name": "X"},
                        headers={**agent, "X-Callcentre-Identity": forged})
    assert spoof.status_code == 403
    assert client.post("/api/v1/practices", json={"ods_code": "Q54321", "name": "X"},
                       headers={"X-Callcentre-Identity": forged}).status_code == 401


def test_a_component_that_dies_is_restarted(stack: RunningStack):
    import os
    import signal

    old = stack.pids()["booking-svc"]
    os.kill(old, signal.SIGKILL)
    new = wait_for(lambda: (p := stack.pids()["booking-svc"]) != old and p, timeout=30)
    assert pid_alive(new)
    wait_for(lambda: httpx.get(f"{stack.url}/readyz", timeout=5).status_code == 200, timeout=30)
    assert "booking-svc exited" in stack.output.read_text() and "booking-svc restarted" in stack.output.read_text()


def test_sigterm_stops_every_child_within_15_seconds(stack: RunningStack):
    pids = stack.pids()
    took = stop_stack(stack)
    assert stack.proc.returncode is not None
    left = [name for name, pid in pids.items() if pid_alive(pid)]
    assert not left, f"left running: {left}"
    assert took < 15, f"stopping took {took:.1f}s"
