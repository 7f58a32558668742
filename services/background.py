"""Stopping the background tasks (outbox relay, event consumers, event-log pruner) at shutdown."""

from __future__ import annotations

import asyncio

from services.logging import get_logger

log = get_logger(__name__)


async def cancel_and_wait(task: asyncio.Task[None] | None, *, timeout: float = 5.0) -> None:
    """Cancel a background task and wait for it, at most `timeout` seconds. Python 3.11's `asyncio.wait_for`
    (nats-py's fetch uses it) can swallow a cancellation that arrives just as its inner future completes; a
    loop that then goes round again must not hold shutdown up for ever."""
    if task is None or task.done():
        return
    task.cancel()
    done, _pending = await asyncio.wait({task}, timeout=timeout)
    if not done:
        log.warning("background.stop_timed_out", task=task.get_name())
    elif not task.cancelled() and task.exception() is not None:
        log.warning("background.stopped_with_error", task=task.get_name(), error=str(task.exception()))
