"""12,000 slots in one PUT (8 weeks x 10 clinicians x 30 a day): correct counts at scale (chunked id sets,
set-based inserts and deletes), with the timings printed (run with -s to see them); no assertion on speed."""

from __future__ import annotations

from tests.booking_svc.bench_rota import measure
from tests.booking_svc.conftest import Booking


async def test_a_twelve_thousand_slot_rota_in_one_put(booking: Booking, dialect: str):
    timings = await measure(booking)
    print(f"\n12,000-slot rota on {dialect}: " + ", ".join(f"{k}: {v * 1000:.0f} ms" for k, v in timings.items()))
