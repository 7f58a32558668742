"""Fan-out of live updates to this process's server-sent-event clients.

The durable consumer is shared by the replicas (each event reaches one of them), so live pushes come from a plain
core-NATS subscription that every process holds on its own. Each client has a bounded queue; a client too slow to
keep up is dropped (its browser reconnects) rather than letting its queue grow."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import AsyncIterator
from typing import Any

from pydantic import ValidationError

from agent_desk_svc.dashboard.service import dashboard
from services.background import cancel_and_wait
from services.contracts.booking import (AppointmentBooked, AppointmentCancelled, AppointmentRescheduled,
                                        SlotAvailabilityChanged)
from services.db import Database
from services.events import Envelope
from services.logging import get_logger
from services.messaging import Messaging

log = get_logger(__name__)

Update = tuple[str, Any] | None  # (SSE event name, JSON data); None ends the client's stream

# Events that can move a dashboard figure (audit events cannot).
_DASHBOARD_SUBJECTS = ("booking.appointment.", "booking.availability.", "desk.call.", "desk.callback.", "desk.agent.")
# A replica can hear of an event before the replica that applies it has committed the projection: look again.
_RECHECK_SECONDS = 1.0
_COALESCE_SECONDS = 0.1


class LiveHub:
    def __init__(self, db: Database, messaging: Messaging, *, queue_size: int = 100, poll_seconds: float = 5.0) -> None:
        self.db = db
        self.messaging = messaging
        self.queue_size = queue_size
        self.poll_seconds = poll_seconds
        self._clients: set[asyncio.Queue[Update]] = set()
        self._dirty = asyncio.Event()
        self._last_dashboard: dict[str, Any] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._subscriptions: list[Any] = []
        self._signal_handlers: dict[int, Any] = {}
        self.closed = False

    # ------------------------------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._subscribe(), name="live-subscribe"),
                       loop.create_task(self._watch_dashboard(), name="live-dashboard")]
        self._hook_shutdown_signals(loop)

    async def close(self) -> None:
        """End every stream cleanly and stop listening. Safe to call more than once."""
        self.end_streams()
        self._unhook_shutdown_signals()
        for task in self._tasks:
            await cancel_and_wait(task)
        self._tasks = []
        for subscription in self._subscriptions:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()
        self._subscriptions = []

    def end_streams(self) -> None:
        """Finish every open stream (clients reconnect elsewhere) and accept no new ones."""
        self.closed = True
        for queue in list(self._clients):
            self._drop(queue)

    def _hook_shutdown_signals(self, loop: asyncio.AbstractEventLoop) -> None:
        """The server waits for open responses to finish before it shuts the app down, and a stream never
        finishes by itself: so end the streams as soon as the server is told to stop, then let it stop."""
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous = signal.getsignal(sig)
            if not callable(previous):  # no server handling shutdown: nothing to run first
                continue

            def on_signal(signum: int, frame: Any, previous: Any = previous) -> None:
                loop.call_soon_threadsafe(self.end_streams)
                previous(signum, frame)

            signal.signal(sig, on_signal)
            self._signal_handlers[sig] = (on_signal, previous)

    def _unhook_shutdown_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig, (ours, previous) in self._signal_handlers.items():
            if signal.getsignal(sig) is ours:
                signal.signal(sig, previous)
        self._signal_handlers = {}

    # ------------------------------------------------------------------------------------------ clients

    @contextlib.asynccontextmanager
    async def connect(self) -> AsyncIterator[asyncio.Queue[Update]]:
        queue: asyncio.Queue[Update] = asyncio.Queue(maxsize=self.queue_size)
        if self.closed:
            queue.put_nowait(None)
        else:
            self._clients.add(queue)
        try:
            yield queue
        finally:
            self._clients.discard(queue)

    @property
    def client_count(self) -> int:
        return len(self._clients)

    def broadcast(self, name: str, data: Any) -> None:
        for queue in list(self._clients):
            try:
                queue.put_nowait((name, data))
            except asyncio.QueueFull:
                log.warning("live.client_dropped", reason="slow")
                self._drop(queue)

    def _drop(self, queue: asyncio.Queue[Update]) -> None:
        self._clients.discard(queue)
        while not queue.empty():
            queue.get_nowait()
        queue.put_nowait(None)

    # ------------------------------------------------------------------------------------------ dashboard

    async def current_dashboard(self) -> dict[str, Any]:
        async with self.db.read_transaction() as session:
            return (await dashboard(session)).model_dump(mode="json")

    def dashboard_may_have_changed(self, recheck: bool = False) -> None:
        self._dirty.set()
        if recheck:
            asyncio.get_running_loop().call_later(_RECHECK_SECONDS, self._dirty.set)

    def resend_dashboard(self) -> None:
        """Push the next figures to everyone even if they have not changed (a client missed them)."""
        self._last_dashboard = None
        self._dirty.set()

    async def _watch_dashboard(self) -> None:
        """Recompute when something may have changed (and every poll interval, which also catches midnight),
        and push only when the figures differ from the last push."""
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._dirty.wait(), timeout=self.poll_seconds)
            await asyncio.sleep(_COALESCE_SECONDS)
            self._dirty.clear()
            if not self._clients:
                self._last_dashboard = None
                continue
            try:
                figures = await self.current_dashboard()
            except Exception as exc:  # noqa: BLE001 - database away: try again at the next tick
                log.warning("live.dashboard_failed", error_type=type(exc).__name__)
                continue
            if figures != self._last_dashboard:
                self._last_dashboard = figures
                self.broadcast("dashboard", figures)

    # ------------------------------------------------------------------------------------------ NATS

    async def _subscribe(self) -> None:
        await self.messaging.wait_ready()
        nc = self.messaging.nc
        assert nc is not None
        # Plain subscriptions: every process hears every message (JetStream publishes are ordinary messages too).
        self._subscriptions = [await nc.subscribe("booking.>", cb=self._on_message),
                               await nc.subscribe("desk.>", cb=self._on_message)]
        log.info("live.subscribed")

    async def _on_message(self, msg: Any) -> None:
        subject: str = msg.subject
        # No one to push to: every booking and desk event reaches every process here, so do nothing for it
        # (no parse, no timer). A stream that opens later is sent the current figures first.
        if not self._clients or not subject.startswith(_DASHBOARD_SUBJECTS):
            return
        contract = _SLOT_CHANGES.get(subject)
        if contract is not None:
            try:
                data = contract.model_validate(Envelope.model_validate_json(msg.data).data)
            except ValidationError:
                log.warning("live.malformed_event", subject=subject)
                return
            taken, freed = _slots_taken_and_freed(data)
            if taken:
                self.broadcast("slot_taken", {"ods_code": data.ods_code, "slot_ids": taken})
            if freed:
                self.broadcast("slot_freed", {"ods_code": data.ods_code, "slot_ids": freed})
        self.dashboard_may_have_changed(recheck=True)


_SLOT_CHANGES = {c.subject(): c for c in (SlotAvailabilityChanged, AppointmentBooked, AppointmentCancelled,
                                          AppointmentRescheduled)}


def _slots_taken_and_freed(data: Any) -> tuple[list[str], list[str]]:
    """The slots an event took and freed at its practice (`data.ods_code`)."""
    if isinstance(data, SlotAvailabilityChanged):
        return data.taken_slot_ids, data.freed_slot_ids
    if isinstance(data, AppointmentBooked):
        return [data.slot_id], []
    if isinstance(data, AppointmentCancelled):
        return [], [data.slot_id]
    # Rescheduled: a move from another practice frees its slot there, in that practice's SlotAvailabilityChanged.
    return [data.slot_id], [data.previous_slot_id] if data.previous_ods_code in (None, data.ods_code) else []
