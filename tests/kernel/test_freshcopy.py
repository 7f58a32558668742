"""A process's short-lived copy of values read from its database (services.freshcopy.FreshCopy): one load for what is
missing or stale, nothing kept from a read a `clear` overtook, and no more keys than allowed. The booking-svc tests
(test_practice_rules.py, test_embargoed_counts.py) check the copies built on it against a real database."""

from __future__ import annotations

import asyncio

from services.freshcopy import FreshCopy


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Source:
    """Stands in for the database: each key's value is its name and how many loads there have been."""

    def __init__(self) -> None:
        self.loads: list[list[str]] = []

    async def load(self, keys: list[str]) -> dict[str, str]:
        self.loads.append(keys)
        return {key: f"{key}{len(self.loads)}" for key in keys}


async def test_fresh_values_come_from_memory_and_stale_or_missing_ones_from_one_load() -> None:
    clock, source = Clock(), Source()
    copy: FreshCopy[str, str] = FreshCopy(1.0, clock)
    assert await copy.get(["a", "b", "a"], source.load) == {"a": "a1", "b": "b1"}
    clock.now += 0.5
    assert await copy.get(["b", "c"], source.load) == {"b": "b1", "c": "c2"}
    clock.now += 0.5
    assert await copy.get(["a", "b", "c"], source.load) == {"a": "a3", "b": "b3", "c": "c2"}
    assert source.loads == [["a", "b"], ["c"], ["a", "b"]]


async def test_a_read_that_a_clear_overtook_is_used_once_and_not_kept() -> None:
    source = Source()
    copy: FreshCopy[str, str] = FreshCopy(60.0, Clock())
    loading, cleared = asyncio.Event(), asyncio.Event()

    async def slow_load(keys: list[str]) -> dict[str, str]:
        loading.set()
        await cleared.wait()
        return await source.load(keys)

    read = asyncio.create_task(copy.get(["a"], slow_load))
    await loading.wait()
    copy.clear()
    cleared.set()
    assert await read == {"a": "a1"}
    assert await copy.get(["a"], source.load) == {"a": "a2"}
    assert await copy.get(["a"], source.load) == {"a": "a2"}


async def test_nothing_is_kept_with_no_lifetime_or_where_keep_refuses() -> None:
    source = Source()
    off: FreshCopy[str, str] = FreshCopy(0, Clock())
    await off.get(["a"], source.load)
    await off.get(["a"], source.load)
    choosy: FreshCopy[str, str] = FreshCopy(60.0, Clock())
    await choosy.get(["a", "b"], source.load, keep=lambda value: value.startswith("a"))
    assert await choosy.get(["a", "b"], source.load) == {"a": "a3", "b": "b4"}
    assert source.loads == [["a"], ["a"], ["a", "b"], ["b"]]


async def test_no_more_keys_are_kept_than_allowed_and_expired_ones_make_way() -> None:
    clock, source = Clock(), Source()
    copy: FreshCopy[str, str] = FreshCopy(1.0, clock, max_entries=2)
    await copy.get(["a", "b", "c"], source.load)  # three do not fit: none is kept
    await copy.get(["a", "b"], source.load)
    await copy.get(["c"], source.load)  # the copy is full of fresh keys
    await copy.get(["a", "b", "c"], source.load)
    assert source.loads == [["a", "b", "c"], ["a", "b"], ["c"], ["c"]]
    clock.now += 1.0
    await copy.get(["c"], source.load)
    await copy.get(["c"], source.load)
    assert source.loads[4:] == [["c"]]
