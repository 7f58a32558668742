"""Sign-in throttling per username, as pure rules: too many failures inside a window lock the name for a while.
Unknown usernames are throttled exactly like real ones, so the lock reveals nothing about who exists."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    max_failures: int = 10
    window: timedelta = timedelta(minutes=15)
    lock: timedelta = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class FailureRecord:
    failures: int
    first_failure_at: datetime
    locked_until: datetime | None = None


def locked_for(record: FailureRecord | None, now: datetime) -> float:
    """Seconds until the name may try again (0 when it may try now)."""
    if record is None or record.locked_until is None or record.locked_until <= now:
        return 0.0
    return (record.locked_until - now).total_seconds()


def after_failure(policy: ThrottlePolicy, record: FailureRecord | None, now: datetime) -> FailureRecord:
    """The record after one more failed sign-in at `now`."""
    expired_lock = record is not None and record.locked_until is not None and record.locked_until <= now
    stale = record is not None and now - record.first_failure_at > policy.window
    if record is None or expired_lock or stale:
        record = FailureRecord(failures=0, first_failure_at=now)
    failures = record.failures + 1
    locked_until = now + policy.lock if failures >= policy.max_failures else None
    return FailureRecord(failures=failures, first_failure_at=record.first_failure_at, locked_until=locked_until)
