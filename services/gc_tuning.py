"""The cyclic garbage collector, tuned for a request-serving process. With CPython's default thresholds
(700, 10, 10), a service under the 8am rush ran a full collection every few seconds. Each full collection
walked every object made at start-up (the ORM's mappers, pydantic's validators, the routes) and stalled the
event loop for 150-260 ms, and collections of all generations took 4-29 % of a core (measured with
gc.callbacks in booking-svc and agent-desk-svc during `callcentre bench rush --mode flow`).

After start-up, `freeze_startup_objects` moves everything alive into the permanent generation, which no
collection walks again, and raises the young generation's threshold so that collections run far less often.
Reference counting still frees almost everything at once; only garbage in reference cycles waits longer
(at most about YOUNG_THRESHOLD objects more than before)."""

from __future__ import annotations

import gc

# Allocations (net of frees) before a young collection. At 50,000 a single young collection in agent-desk-svc
# took 109 ms; at 10,000 they took 5-20 ms, a few times a second, at 100 bookings/s.
YOUNG_THRESHOLD = 10_000
OLDER_THRESHOLDS = (20, 20)


_done = False


def freeze_startup_objects() -> None:
    """Call once start-up is complete, in each worker process. Only the first call in a process acts: a test
    session starts many apps, and freezing again would keep each finished test's garbage for ever."""
    global _done
    if _done:
        return
    _done = True
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *OLDER_THRESHOLDS)
