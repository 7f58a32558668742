"""A demo region, created through the gateway exactly as real clients would: practices in PCNs, their API keys,
clinicians, slot types and rules, registered patients, four weeks of rotas, agents and a supervisor."""

from __future__ import annotations

import json
import random
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import nhs_number

PCNS = [
    ("PCN-NORTH", "Northgate Primary Care Network"),
    ("PCN-RIVER", "Riverside Primary Care Network"),
    ("PCN-HILLS", "Hillside Primary Care Network"),
]
PRACTICE_NAMES = [
    "Abbey Road Surgery", "Beech House Medical Centre", "Castle Street Practice", "Dale View Health Centre",
    "Elm Tree Surgery", "Fairfield Medical Practice", "Greenway Health Centre", "Harbour Lane Surgery",
    "Ivy Court Medical Centre", "Juniper Family Practice", "Kingsmead Surgery", "Linden Grove Practice",
]
FAMILY = ["Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Patel", "O'Brien",
          "Khan", "Evans", "Thomas", "Roberts", "Nowak", "Müller", "Okafor", "Singh", "Clarke", "Hughes"]
GIVEN = ["Olivia", "Amelia", "Isla", "Ava", "Noah", "Oliver", "George", "Arthur", "Muhammad", "Leo", "Freya",
         "Sofia", "Harry", "Zara", "Aisha", "Jack", "Grace", "Ewan", "Chloe", "Kwame"]
SLOT_TYPES = [
    {"code": "GP-ROUTINE", "name": "Routine GP appointment", "channel": "in_person", "bookable_by_centre": True,
     "max_days_ahead": 28, "min_notice_minutes": 60, "release": None, "shared_with_pcn": False},
    {"code": "GP-URGENT", "name": "Urgent on-the-day GP", "channel": "in_person", "bookable_by_centre": True,
     "max_days_ahead": 1, "min_notice_minutes": 15, "release": {"days_before": 0, "at_time": "08:00"},
     "shared_with_pcn": False},
    {"code": "GP-PHONE", "name": "GP telephone consultation", "channel": "telephone", "bookable_by_centre": True,
     "max_days_ahead": 14, "min_notice_minutes": 30, "release": None, "shared_with_pcn": True},
    {"code": "NURSE", "name": "Practice nurse", "channel": "in_person", "bookable_by_centre": True,
     "max_days_ahead": 28, "min_notice_minutes": 60, "release": None, "shared_with_pcn": True},
    {"code": "INTERNAL", "name": "Practice-only (reviews)", "channel": "in_person", "bookable_by_centre": False,
     "max_days_ahead": 28, "min_notice_minutes": 0, "release": None, "shared_with_pcn": False},
]
AGENTS = [("agent1", "Alex Agent"), ("agent2", "Bea Agent"), ("agent3", "Cal Agent"), ("agent4", "Dee Agent")]
SUPERVISOR = ("supervisor1", "Sam Supervisor")


def synthetic_nhs_numbers(count: int, start: int = 999_000_000) -> list[str]:
    """Valid NHS numbers from the 999 range, which is never issued to real people."""
    out: list[str] = []
    stem = start
    while len(out) < count:
        digits = f"{stem:09d}"
        check = nhs_number.calculate_checksum(digits)
        if check is not None and check < 10:
            out.append(f"{digits}{check}")
        stem += 1
    return out


def demo_practices() -> list[dict[str, Any]]:
    practices = []
    for i, name in enumerate(PRACTICE_NAMES):
        pcn = PCNS[i % len(PCNS)][0]
        practices.append({
            "ods_code": f"Y{90001 + i:05d}",
            "name": name,
            "pcn": pcn,
            "phone": f"0113 496 0{i:03d}",
            "address": f"{i + 1} High Street, Leeds LS{i + 1} 1AA",
            "notes_for_agents": "Blood tests only before 11:00. Ask about hearing loop for the practice.",
        })
    return practices


def clinicians_for(ods: str) -> list[dict[str, Any]]:
    return [
        {"clinician_id": f"{ods}-GP1", "name": "Dr Asha Patel", "role": "gp", "gender": "female"},
        {"clinician_id": f"{ods}-GP2", "name": "Dr Tom Reid", "role": "gp", "gender": "male"},
        {"clinician_id": f"{ods}-ANP", "name": "Jo Carter ANP", "role": "anp", "gender": "female"},
        {"clinician_id": f"{ods}-NUR", "name": "Sam Lee RN", "role": "nurse", "gender": "male"},
    ]


def rota_for(ods: str, start: date, days: int) -> dict[str, Any]:
    sessions = []
    for offset in range(days):
        day = start + timedelta(days=offset)
        if day.weekday() >= 5:
            continue
        d = day.isoformat()
        sessions += [
            {"session_id": f"{d}-GP1-AM", "clinician_id": f"{ods}-GP1", "slot_type": "GP-ROUTINE",
             "start": f"{d}T08:30:00", "end": f"{d}T12:00:00", "slot_minutes": 10},
            {"session_id": f"{d}-GP2-AM", "clinician_id": f"{ods}-GP2", "slot_type": "GP-URGENT",
             "start": f"{d}T08:00:00", "end": f"{d}T11:00:00", "slot_minutes": 10},
            {"session_id": f"{d}-GP2-PM", "clinician_id": f"{ods}-GP2", "slot_type": "GP-PHONE",
             "start": f"{d}T14:00:00", "end": f"{d}T17:00:00", "slot_minutes": 15},
            {"session_id": f"{d}-ANP-PM", "clinician_id": f"{ods}-ANP", "slot_type": "GP-ROUTINE",
             "start": f"{d}T13:30:00", "end": f"{d}T17:30:00", "slot_minutes": 15},
            {"session_id": f"{d}-NUR-AM", "clinician_id": f"{ods}-NUR", "slot_type": "NURSE",
             "start": f"{d}T08:30:00", "end": f"{d}T12:30:00", "slot_minutes": 20},
        ]
    return {"from": start.isoformat(), "to": (start + timedelta(days=days)).isoformat(), "sessions": sessions}


class SeedError(RuntimeError):
    pass


def _check(response: httpx.Response, *ok: int) -> httpx.Response:
    if response.status_code not in ok:
        raise SeedError(f"{response.request.method} {response.request.url.path} -> {response.status_code}: "
                        f"{response.text[:500]}")
    return response


def seed(base_url: str, admin_user: str, admin_password: str, data_dir: Path, *, patients_per_practice: int = 50,
         rota_days: int = 28, agent_password: str = "agent-demo-pass", log=print) -> dict[str, Any]:
    rng = random.Random(20261122)
    with httpx.Client(base_url=base_url, timeout=60) as client:
        # agent-desk-svc creates the admin at start, or a moment later when its database was busy: wait for it,
        # slowly enough (at most 8 tries) never to trip the sign-in lock (10 failures in 15 minutes).
        for _attempt in range(8):
            response = client.post("/api/v1/auth/token", json={"username": admin_user, "password": admin_password})
            if response.status_code == 200:
                break
            time.sleep(2.5)
        token = _check(response, 200).json()["access_token"]
        admin = {"Authorization": f"Bearer {token}"}

        for code, name in PCNS:
            _check(client.post("/api/v1/pcns", json={"code": code, "name": name}, headers=admin), 201, 409)
        practices = demo_practices()
        keys: dict[str, str] = {}
        for practice in practices:
            _check(client.post("/api/v1/practices", json=practice, headers=admin), 201, 409)
            keys[practice["ods_code"]] = _check(client.post(f"/api/v1/practices/{practice['ods_code']}/api-keys",
                                                            headers=admin), 201).json()["key"]
        log(f"seed: {len(PCNS)} PCNs, {len(practices)} practices with API keys")

        numbers = synthetic_nhs_numbers(patients_per_practice * len(practices))
        demo_patients: list[dict[str, str]] = []
        for i, practice in enumerate(practices):
            ods = practice["ods_code"]
            key = {"X-API-Key": keys[ods]}
            _check(client.put(f"/api/v1/practices/{ods}/clinicians", json=clinicians_for(ods), headers=key), 200)
            _check(client.put(f"/api/v1/practices/{ods}/slot-types", json=SLOT_TYPES, headers=key), 200)
            rows = []
            for nhs in numbers[i * patients_per_practice:(i + 1) * patients_per_practice]:
                rows.append({"nhs_number": nhs, "family": rng.choice(FAMILY), "given": rng.choice(GIVEN),
                             "birth_date": date(rng.randint(1935, 2020), rng.randint(1, 12), rng.randint(1, 28)).isoformat(),
                             "gender": rng.choice(["female", "male"]), "postcode": f"LS{i + 1} {rng.randint(1, 9)}AB",
                             "phone": f"07700 900{rng.randint(0, 999):03d}"})
            result = _check(client.put(f"/api/v1/practices/{ods}/patients", json=rows, headers=key), 200).json()
            if result.get("rejected"):
                raise SeedError(f"patients rejected for {ods}: {result['rejected'][:3]}")
            demo_patients.append({"ods_code": ods, "nhs_number": rows[0]["nhs_number"], "family": rows[0]["family"],
                                  "birth_date": rows[0]["birth_date"]})
        log(f"seed: clinicians, slot types and {len(numbers)} registered patients")

        start = datetime.now().date()
        for practice in practices:
            ods = practice["ods_code"]
            body = rota_for(ods, start, rota_days)
            # booking-svc learns clinicians and slot types from registry events: wait until it knows them.
            deadline = time.monotonic() + 60
            while True:
                response = client.put(f"/api/v1/rotas/{ods}", json=body, headers={"X-API-Key": keys[ods]})
                if response.status_code == 200:
                    break
                if time.monotonic() > deadline or response.status_code not in (404, 409, 422, 503):
                    _check(response, 200)
                time.sleep(0.3)
        log(f"seed: {rota_days} days of rotas for every practice")

        logins = {"admin": (admin_user, admin_password)}
        for username, display in [*AGENTS, SUPERVISOR]:
            role = "supervisor" if (username, display) == SUPERVISOR else "agent"
            _check(client.post("/api/v1/agents", json={"username": username, "password": agent_password,
                                                       "display_name": display, "role": role}, headers=admin), 201, 409)
            logins[username] = (username, agent_password)
        log(f"seed: {len(AGENTS)} agents and a supervisor")

    summary = {"practices": [p["ods_code"] for p in practices], "api_keys": keys, "logins": logins,
               "demo_patients": demo_patients}
    (data_dir / "demo.json").write_text(json.dumps(summary, indent=2))
    (data_dir / "demo.json").chmod(0o600)
    return summary
