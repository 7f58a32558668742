"""Small builders shared by the registry's tests."""

from __future__ import annotations

from typing import Any

import httpx
import nhs_number

from tests.support.apps import ADMIN


def valid_nhs_numbers(count: int, start: int = 999_100_000) -> list[str]:
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


def with_wrong_check_digit(number: str) -> str:
    return number[:9] + str((int(number[9]) + 1) % 10)


async def make_pcn(client: httpx.AsyncClient, code: str, name: str | None = None) -> dict[str, Any]:
    response = await client.post("/api/v1/pcns", json={"code": code, "name": name or f"{code} network"}, headers=ADMIN)
    assert response.status_code == 201, response.text
    return response.json()


async def make_practice(client: httpx.AsyncClient, ods: str, **fields: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/practices", json={"ods_code": ods, "name": f"Practice {ods}", **fields},
                                 headers=ADMIN)
    assert response.status_code == 201, response.text
    return response.json()
