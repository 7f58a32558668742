"""Races at the database: many clients, two app instances (one in-process, one served by uvicorn in its own thread
with its own event loop and connection pool, like a second replica), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter

import httpx
import uvicorn
from booking_svc.main import build_app

from tests.booking_svc.conftest import TOMORROW, Booking, booking_settings, nhs, rota, session
from tests.support.apps import identity, practice, wait_until
from tests.support.natsserver import free_port

A = "A81001"


class ServedApp:
    """A second booking-svc instance on the same database, served over real HTTP."""

    def __init__(self, booking: Booking) -> None:
        settings = booking_settings(str(booking.app.state.db.url), booking.nats_url)
        self.app = build_app(settings)
        self.app.state.clock = booking.clock
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_config=None,
                                                    access_log=False, loop="asyncio", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, name="booking-svc-replica", daemon=True)

    def __enter__(self) -> httpx.AsyncClient:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        self.client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.port}", timeout=60)
        return self.client

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)


async def test_many_clients_racing_for_few_slots_get_exactly_one_booking_each(booking: Booking):
    await booking.seed_practice(A, patients=[nhs(n) for n in range(80)])
    assert (await booking.put_rota(A, rota([session("day", TOMORROW, "08:00", "16:20")]))).status_code == 200
    slots = [r[0] for r in await booking.sql("SELECT id FROM slots ORDER BY start_at")]
    assert len(slots) == 50
    agents = [identity("agent", f"agent{n}") for n in range(50)]

    with ServedApp(booking) as replica:
        clients = [booking.client, replica]

        # 50 bookings for 10 slots, alternately through each instance, all in flight at once.
        async def book(n: int) -> httpx.Response:
            return await clients[n % 2].post("/api/v1/appointments", headers=agents[n],
                                             json={"slot_id": slots[n % 10], "nhs_number": nhs(n)})

        results = await asyncio.gather(*(book(n) for n in range(50)))
        assert Counter(r.status_code for r in results) == {201: 10, 409: 40}
        assert {r.json()["code"] for r in results if r.status_code == 409} == {"slot_taken"}
        assert sorted(r.json()["slot_id"] for r in results if r.status_code == 201) == sorted(slots[:10])
        assert await booking.sql("SELECT slot_id FROM appointments GROUP BY slot_id HAVING count(*) > 1") == []
        assert await booking.sql("SELECT count(*) FROM appointments") == [(10,)]
        assert len(await booking.events("booking.appointment.booked.v1")) == 10

        # 50 holds for the next 10 slots: one hold per slot.
        async def hold(n: int) -> httpx.Response:
            return await clients[n % 2].post("/api/v1/holds", headers=agents[n], json={"slot_id": slots[10 + n % 10]})

        holds = await asyncio.gather(*(hold(n) for n in range(50)))
        assert Counter(r.status_code for r in holds) == {201: 10, 409: 40}
        assert {r.json()["code"] for r in holds if r.status_code == 409} == {"slot_held"}
        held = await booking.sql("SELECT id, hold_id FROM slots WHERE status = 'held' ORDER BY start_at")
        assert [h[0] for h in held] == slots[10:20]
        assert {h[1] for h in held} == {r.json()["hold_id"] for r in holds if r.status_code == 201}

        # 30 bookings of 30 different slots at once while a practice polls its feed: the poller, resuming
        # from the last cursor it saw, sees every entry once, in sequence (commit) order, with no gaps.
        seen: list[int] = []
        done = asyncio.Event()

        async def poll() -> None:
            after = 0
            while True:
                finished = done.is_set()
                page = (await booking.client.get(f"/api/v1/feed/{A}", params={"after": after},
                                                 headers=practice(A))).json()
                seen.extend(item["seq"] for item in page["items"])
                after = int(page["last_cursor"])
                if finished and not page["items"]:
                    return

        poller = asyncio.create_task(poll())
        parallel = await asyncio.gather(*(
            clients[n % 2].post("/api/v1/appointments", headers=agents[n],
                                json={"slot_id": slots[20 + n], "nhs_number": nhs(50 + n)}) for n in range(30)))
        done.set()
        await asyncio.wait_for(poller, 30)
        assert Counter(r.status_code for r in parallel) == {201: 30}
        assert seen == list(range(1, 41))
        feed_ids = [r[0] for r in await booking.sql(
            "SELECT appointment_id FROM feed_entries WHERE ods_code = :o ORDER BY seq", o=A)]
        assert len(set(feed_ids)) == 40 and set(feed_ids) == {r[0] for r in await booking.sql("SELECT id FROM appointments")}

    async def relayed() -> bool:
        return await booking.app.state.relay.pending_count() == 0

    await wait_until(relayed, timeout=20)
