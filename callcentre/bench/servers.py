"""The raw HTTP servers `bench limits` measures, run as their own uvicorn processes: the same server stack as
the services (uvicorn + uvloop + httptools with coalesced writes + FastAPI), without the centre's code."""

from __future__ import annotations

import os
import uuid
from contextlib import asynccontextmanager
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from callcentre.bench.limits import BOOK_INSERT, BOOK_UPDATE

def bare_app() -> FastAPI:
    app = FastAPI(openapi_url=None)

    @app.get("/ping")
    async def ping() -> dict[str, str]:
        return {"status": "ok", "service": "bare"}

    return app


def minimal_booking_app() -> FastAPI:
    """POST /book {slot_id, nhs_number}: book in one transaction, publish the event with ack, answer 201."""
    import asyncpg
    import nats

    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(_app: FastAPI):  # noqa: ANN202
        state["pool"] = await asyncpg.create_pool(os.environ["LIMITS_DSN"], min_size=10, max_size=10)
        state["nc"] = await nats.connect(os.environ["LIMITS_NATS_URL"])
        state["js"] = state["nc"].jetstream(timeout=5)
        yield
        await state["nc"].close()
        await state["pool"].close()

    app = FastAPI(openapi_url=None, lifespan=lifespan)

    @app.post("/book", status_code=201)
    async def book(request: Request) -> Any:
        body = orjson.loads(await request.body())
        appointment_id = uuid.uuid4().hex
        async with state["pool"].acquire() as c, c.transaction():
            if await c.fetchval(BOOK_UPDATE, body["slot_id"]) is None:
                return JSONResponse({"code": "slot_taken"}, status_code=409)
            await c.execute(BOOK_INSERT, appointment_id, body["slot_id"], body["nhs_number"])
        event = orjson.dumps({"id": uuid.uuid4().hex, "type": "booking.appointment.booked", "data": {
            "appointment_id": appointment_id, "slot_id": body["slot_id"], "nhs_number": body["nhs_number"]}})
        await state["js"].publish("limits.appointment.booked.v1", event, headers={"Nats-Msg-Id": appointment_id})
        return {"id": appointment_id, "status": "booked", "slot_id": body["slot_id"]}

    return app
