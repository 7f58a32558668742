"""Prints how long one PUT of a practice's 10,000 patients takes, on SQLite and PostgreSQL.

    .venv/bin/python -m tests.practice_registry_svc.bench_patient_upload [--patients 10000] [--dialect sqlite]

Each run uses a fresh database, the real app in-process (ASGI, no network), and NATS left unreachable so the
figures are the request alone (events wait in the outbox, as they would while NATS is away)."""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from datetime import date
from pathlib import Path

from practice_registry_svc.main import build_app
from practice_registry_svc.settings import Settings
from tests.practice_registry_svc.support import valid_nhs_numbers
from tests.support.apps import ADMIN, practice, running_service
from tests.support.databases import DIALECTS, create_database, drop_database

FAMILY = ["Smith", "Jones", "O'Brien", "Müller", "Nowak", "Patel", "Okafor", "Singh", "Clarke", "Ní Bhriain"]
GIVEN = ["Olivia", "Noah", "Zoë", "Amelia", "Leo", "Aisha", "Kwame", "Freya", "Seán", "Harry"]


def patient_rows(count: int, seed: int = 1) -> list[dict]:
    rng = random.Random(seed)
    return [{"nhs_number": nhs, "family": rng.choice(FAMILY), "given": rng.choice(GIVEN),
             "birth_date": date(rng.randint(1930, 2023), rng.randint(1, 12), rng.randint(1, 28)).isoformat(),
             "gender": rng.choice(["female", "male"]), "postcode": f"LS{rng.randint(1, 29)} {rng.randint(1, 9)}AB",
             "phone": f"07700 900{rng.randint(0, 999):03d}"}
            for nhs in valid_nhs_numbers(count)]


async def run(dialect: str, count: int) -> dict[str, float]:
    tmp = Path(tempfile.mkdtemp())
    url = create_database(dialect, "bench", tmp)
    settings = Settings(database_url=url, nats_url="nats://127.0.0.1:1", log_level="WARNING")
    timings: dict[str, float] = {}
    try:
        async with running_service("practice_registry_svc", build_app, settings) as (_app, client):
            assert (await client.post("/api/v1/practices", json={"ods_code": "A81001", "name": "Bench"},
                                      headers=ADMIN)).status_code == 201
            rows = patient_rows(count)
            changed = [{**row, "phone": "0113 496 0999"} if i % 10 == 0 else row for i, row in enumerate(rows)]
            runs = [("new", rows, "upsert"), ("unchanged", rows, "upsert"), ("10% changed", changed, "upsert"),
                    ("replace, half left", changed[::2], "replace")]
            for label, body, mode in runs:
                started = time.perf_counter()
                response = await client.put("/api/v1/practices/A81001/patients", params={"mode": mode}, json=body,
                                            headers=practice("A81001"), timeout=300)
                timings[label] = time.perf_counter() - started
                assert response.status_code == 200, response.text
                result = response.json()
                print(f"  {dialect:10} {label:20} {len(body):6} rows  {timings[label]:6.2f} s  "
                      f"created={result['created']} updated={result['updated']} unchanged={result['unchanged']} "
                      f"removed={result['removed']} rejected={len(result['rejected'])}")
    finally:
        drop_database(url)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--dialect", choices=DIALECTS, action="append")
    args = parser.parse_args()
    for dialect in args.dialect or DIALECTS:
        asyncio.run(run(dialect, args.patients))


if __name__ == "__main__":
    main()
