"""Request-level dependencies shared by this service's routers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request


async def _now(request: Request) -> datetime:
    # One clock for the whole service (app.state.clock), so tests can move time instead of sleeping.
    return request.app.state.clock()


Now = Annotated[datetime, Depends(_now)]
