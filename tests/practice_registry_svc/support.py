"""Small builders shared by the registry's tests."""

from __future__ import annotations

from typing import Any

import httpx

from callcentre.seed import synthetic_nhs_numbers

from tests.support.apps import ADMIN


def valid_nhs_numbers(count: int, start: int = 999_100_000) -> list[str]:
    """Valid NHS numbers from the 999 range, which is never issued to real people."""
    return synthetic_nhs_numbers(count, start)


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
