"""A region big enough for a rush, created through the gateway as real clients would: practices in PCNs with
their API keys, clinicians, one centre-bookable slot type (no notice, 14 days ahead, no embargo), registered
patients, 14 days of full-day rotas, and one agent account per virtual agent. Practices, patients and slots are
reused when they already exist (a second run against the same stack); agent accounts are new per run."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import httpx

from callcentre.seed import FAMILY, GIVEN, synthetic_nhs_numbers

SLOT_TYPE = {"code": "BENCH-GP", "name": "Rush GP appointment", "channel": "in_person", "bookable_by_centre": True,
             "max_days_ahead": 14, "min_notice_minutes": 0, "release": None, "shared_with_pcn": False}
PRACTICES_PER_PCN = 10
NHS_START = 999_200_000  # the 999 range is never issued to real people; the demo seed uses 999_000_000 onwards
ROTA_DAYS = 14
DAY_START, DAY_END, SLOT_MINUTES = "08:00:00", "18:00:00", 10


class RegionError(RuntimeError):
    pass


@dataclass
class Region:
    practices: list[str]
    patients: dict[str, list[str]]  # practice -> NHS numbers registered there
    agents: list[str] = field(default_factory=list)
    supervisor: str = ""  # an account the run reads the dashboard with
    agent_prefix: str = ""  # every account made for this run starts with it
    api_keys: dict[str, str] = field(default_factory=dict)
    slots_per_practice: int = 0


def practice_codes(count: int) -> list[str]:
    return [f"R{10001 + i:05d}" for i in range(count)]


def rota_body(ods: str, clinicians: int, start: date, days: int = ROTA_DAYS) -> dict[str, Any]:
    sessions = []
    for offset in range(days):
        day = (start + timedelta(days=offset)).isoformat()
        for c in range(clinicians):
            sessions.append({"session_id": f"{day}-C{c + 1}", "clinician_id": f"{ods}-C{c + 1}", "slot_type": "BENCH-GP",
                             "start": f"{day}T{DAY_START}", "end": f"{day}T{DAY_END}", "slot_minutes": SLOT_MINUTES})
    return {"from": start.isoformat(), "to": (start + timedelta(days=days)).isoformat(), "sessions": sessions}


def _ok(response: httpx.Response, *codes: int) -> httpx.Response:
    if response.status_code not in codes:
        raise RegionError(f"{response.request.method} {response.request.url.path} -> {response.status_code}: "
                          f"{response.text[:300]}")
    return response


async def seed_region(url: str, admin: tuple[str, str], *, practices: int, patients_per_practice: int,
                      clinicians: int, agents: int, agent_prefix: str, log: Callable[[str], None] = print,
                      concurrency: int = 6) -> Region:
    codes = practice_codes(practices)
    numbers = synthetic_nhs_numbers(practices * patients_per_practice, start=NHS_START)
    region = Region(codes, {ods: numbers[i * patients_per_practice:(i + 1) * patients_per_practice]
                            for i, ods in enumerate(codes)}, agent_prefix=agent_prefix)
    gate = asyncio.Semaphore(concurrency)
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        token = _ok(await client.post("/api/v1/auth/token", json={"username": admin[0], "password": admin[1]}),
                    200).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        pcns = sorted({f"PCN-RUSH-{i // PRACTICES_PER_PCN + 1}" for i in range(practices)})
        for pcn in pcns:
            _ok(await client.post("/api/v1/pcns", json={"code": pcn, "name": f"Rush {pcn}"}, headers=headers), 201, 409)

        async def practice(i: int, ods: str) -> None:
            async with gate:
                body = {"ods_code": ods, "name": f"Rush Surgery {i + 1}", "pcn": f"PCN-RUSH-{i // PRACTICES_PER_PCN + 1}"}
                _ok(await client.post("/api/v1/practices", json=body, headers=headers), 201, 409)
                key = _ok(await client.post(f"/api/v1/practices/{ods}/api-keys", headers=headers), 201).json()["key"]
                region.api_keys[ods] = key
                own = {"X-API-Key": key}
                _ok(await client.put(f"/api/v1/practices/{ods}/clinicians", headers=own, json=[
                    {"clinician_id": f"{ods}-C{c + 1}", "name": f"Dr Rush {c + 1}", "role": "gp",
                     "gender": "female" if c % 2 else "male"} for c in range(clinicians)]), 200)
                _ok(await client.put(f"/api/v1/practices/{ods}/slot-types", headers=own, json=[SLOT_TYPE]), 200)
                rows = [{"nhs_number": nhs, "family": FAMILY[n % len(FAMILY)], "given": GIVEN[n % len(GIVEN)],
                         "birth_date": date(1940 + n % 80, 1 + n % 12, 1 + n % 28).isoformat()}
                        for n, nhs in enumerate(region.patients[ods])]
                result = _ok(await client.put(f"/api/v1/practices/{ods}/patients", headers=own, json=rows), 200).json()
                if result["rejected"]:
                    raise RegionError(f"patients rejected at {ods}: {result['rejected'][:2]}")

        await asyncio.gather(*(practice(i, ods) for i, ods in enumerate(codes)))
        log(f"region: {practices} practices, {practices * patients_per_practice} patients "
            f"({time.monotonic() - started:.0f} s)")

        today = date.today()
        created = [0]

        async def rota(ods: str) -> None:
            async with gate:
                body = rota_body(ods, clinicians, today)
                deadline = time.monotonic() + 120
                while True:  # booking-svc learns the practice and its slot type from registry events
                    response = await client.put(f"/api/v1/rotas/{ods}", json=body,
                                                headers={"X-API-Key": region.api_keys[ods]})
                    if response.status_code == 200:
                        created[0] += response.json()["created"]
                        return
                    if time.monotonic() > deadline or response.status_code not in (404, 409, 422, 503):
                        _ok(response, 200)
                    await asyncio.sleep(0.3)

        await asyncio.gather(*(rota(ods) for ods in codes))
        region.slots_per_practice = ROTA_DAYS * clinicians * 60 * 10 // SLOT_MINUTES
        log(f"region: {ROTA_DAYS} days of rotas, {created[0]} new slots "
            f"({time.monotonic() - started:.0f} s)")

        async def agent(n: int) -> str:
            username = f"{agent_prefix}{n:04d}"
            async with gate:
                _ok(await client.post("/api/v1/agents", headers=headers, json={
                    "username": username, "password": f"rush-{username}-pass", "display_name": f"Rush agent {n}",
                    "role": "agent"}), 201)
            return username

        region.agents = list(await asyncio.gather(*(agent(n) for n in range(agents))))
        region.supervisor = f"{agent_prefix}observer"
        _ok(await client.post("/api/v1/agents", headers=headers, json={
            "username": region.supervisor, "password": f"rush-{region.supervisor}-pass",
            "display_name": "Rush observer", "role": "supervisor"}), 201)
        log(f"region: {agents} agent accounts ({time.monotonic() - started:.0f} s)")
    return region
