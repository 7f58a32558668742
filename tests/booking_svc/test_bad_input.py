"""Odd input gets a clear 4xx problem and never a 500 (and never changes anything)."""

from __future__ import annotations

from tests.booking_svc.conftest import TOMORROW, Booking, nhs, rota, session
from tests.support.apps import ADMIN, AGENT

A = "A81001"


async def test_odd_input_is_a_4xx_problem(booking: Booking):
    await booking.seed_practice(A, patients=[nhs(1)])
    assert (await booking.put_rota(A, rota([session("am", TOMORROW, "09:00", "10:00")]))).status_code == 200
    slot_id = (await booking.slots(AGENT, practice=A))[0]["id"]
    requests = [
        ("GET", "/api/v1/slots", {"params": {"practice": A, "to": "9999-12-30"}}, 200),
        ("GET", "/api/v1/slots", {"params": {"practice": A, "to": "9999-12-31"}}, 422),
        ("GET", "/api/v1/slots", {"params": {"practice": A, "from": "0001-01-01T00:00:00+01:00"}}, 422),
        ("GET", "/api/v1/slots", {"params": {"practice": A, "limit": 0}}, 422),
        ("GET", "/api/v1/slots", {"params": {"practice": A, "channel": "fax"}}, 422),
        ("GET", "/api/v1/slots", {"params": {"practice": A, "cursor": "eyJzIjogMX0"}}, 422),
        ("GET", "/api/v1/appointments", {"params": {"to": "9999-12-30", "nhs_number": nhs(1)}}, 200),
        ("GET", "/api/v1/appointments", {"params": {"status": "lost"}}, 422),
        ("GET", f"/api/v1/feed/{A}", {"params": {"after": "999999999999999999"}}, 200),
        ("GET", f"/api/v1/feed/{A}", {"params": {"after": "-1"}}, 422),
        ("POST", "/api/v1/appointments", {"json": {"slot_id": slot_id, "nhs_number": "٩٤٣٤٧٦٥٩١٩"}}, 422),
        ("POST", "/api/v1/appointments", {"json": {"slot_id": slot_id, "nhs_number": 9434765919}}, 422),
        ("POST", "/api/v1/appointments", {"content": b"{", "headers": {"content-type": "application/json"}}, 400),
        ("POST", "/api/v1/holds", {"json": {}}, 422),
        ("DELETE", "/api/v1/holds/nope", {}, 404),
        ("POST", "/api/v1/appointments/nope/cancel", {"json": {}}, 404),
        ("POST", "/api/v1/appointments/nope/status", {"json": {"status": "arrived"}}, 404),
        ("PUT", f"/api/v1/rotas/{A}", {"json": {"from": "9999-12-20", "to": "9999-12-31",
                                                "sessions": [session("x", TOMORROW, "09:00", "10:00")]}}, 422),
        ("PUT", f"/api/v1/rotas/{A}", {"json": {"from": "9999-12-20", "to": "9999-12-31", "sessions": []}}, 200),
        ("PUT", f"/api/v1/rotas/{A}", {"json": {"from": "0001-01-01", "to": "0001-01-02", "sessions": []}}, 200),
        ("PUT", f"/api/v1/rotas/{A}", {"json": {**rota([session("x", TOMORROW, "09:00", "10:00", minutes=0)])}}, 422),
        ("PUT", f"/api/v1/rotas/{A}", {"json": rota([{**session("x", TOMORROW, "09:00", "10:00"),
                                                      "start": "2027-01-12T09:00:00+14:00"}])}, 422),
    ]
    for method, path, kwargs, expected in requests:
        headers = {**(AGENT if not path.startswith(("/api/v1/rotas", "/api/v1/feed")) else ADMIN),
                   **kwargs.pop("headers", {})}
        if path.endswith("/status"):
            headers = ADMIN
        response = await booking.client.request(method, path, headers=headers, **kwargs)
        assert response.status_code == expected, (method, path, response.text)
        if expected >= 400:
            assert response.headers["content-type"] == "application/problem+json" and response.json()["code"]
    assert await booking.sql("SELECT count(*) FROM slots") == [(6,)]
    assert await booking.sql("SELECT count(*) FROM appointments") == [(0,)]
