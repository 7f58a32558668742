"""The report arithmetic: percentiles of latencies, throughput and ratios, kept pure so they are unit-tested."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any


def percentile(values: Sequence[float], p: float) -> float | None:
    """The p-th percentile (0-100) by the nearest-rank method: the smallest value with at least p% of the
    values at or below it. None for no values. `values` need not be sorted."""
    if not values:
        return None
    if not 0 <= p <= 100:
        raise ValueError("p is a percentage between 0 and 100")
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def latency_summary(seconds: Sequence[float]) -> dict[str, Any]:
    """count, mean and p50/p95/p99/max in milliseconds (2 decimals) of latencies given in seconds."""
    if not seconds:
        return {"count": 0, "mean_ms": None, "p50_ms": None, "p95_ms": None, "p99_ms": None, "max_ms": None}
    ordered = sorted(seconds)

    def ms(value: float | None) -> float | None:
        return None if value is None else round(value * 1000, 2)

    return {"count": len(ordered), "mean_ms": ms(sum(ordered) / len(ordered)),
            "p50_ms": ms(percentile(ordered, 50)), "p95_ms": ms(percentile(ordered, 95)),
            "p99_ms": ms(percentile(ordered, 99)), "max_ms": ms(ordered[-1])}


def per_second(count: int, seconds: float) -> float:
    return round(count / seconds, 1) if seconds > 0 else 0.0


def ratio(ours: float | None, raw: float | None) -> float | None:
    """ours ÷ raw, 3 decimals; None when either is unknown or raw is not positive."""
    if ours is None or raw is None or raw <= 0:
        return None
    return round(ours / raw, 3)


def merge_counts(counts: Iterable[Mapping[str, int]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for one in counts:
        for key, n in one.items():
            out[key] = out.get(key, 0) + n
    return dict(sorted(out.items()))
