"""A process's short-lived copy of values read from its database, for reads on a hot path whose answer hardly
moves (services.freshcopy.FreshCopy)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class FreshCopy(Generic[K, V]):
    """Values by key, each kept for `ttl_seconds` after it was read (0 keeps nothing). `clear` forgets them all at
    once: call it after the commit of a change this process made or applied, and another replica's copy is at most
    `ttl_seconds` old. A read that a `clear` overtook is used once and not kept, or it would bring back what the
    change replaced. At most `max_entries` keys are kept (None: the caller bounds them), so keys a client makes up
    cannot grow the copy without bound: expired ones make way, and a read that still does not fit is not kept."""

    def __init__(self, ttl_seconds: float, clock: Callable[[], float] = time.monotonic,
                 max_entries: int | None = 4096) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self._clock = clock
        self._entries: dict[K, tuple[float, V]] = {}
        self._generation = 0

    def clear(self) -> None:
        self._entries.clear()
        self._generation += 1

    async def get(self, keys: Iterable[K], load: Callable[[list[K]], Awaitable[Mapping[K, V]]],
                  keep: Callable[[V], bool] | None = None) -> dict[K, V]:
        """The value of each of `keys`: from memory where fresh, the others from one `load` of the missing keys,
        in the order given (it returns a value for each). `keep` says which loaded values may be kept."""
        at = self._clock()
        found: dict[K, V] = {}
        missing: list[K] = []
        for key in dict.fromkeys(keys):
            entry = self._entries.get(key)
            if entry is not None and entry[0] > at:
                found[key] = entry[1]
            else:
                missing.append(key)
        if missing:
            generation = self._generation
            loaded = await load(missing)
            found.update(loaded)
            kept = {key: value for key, value in loaded.items() if keep is None or keep(value)}
            if kept and self.ttl_seconds > 0 and generation == self._generation and self._room_for(len(kept), at):
                self._entries.update((key, (at + self.ttl_seconds, value)) for key, value in kept.items())
        return found

    def _room_for(self, count: int, at: float) -> bool:
        if self.max_entries is None or len(self._entries) + count <= self.max_entries:
            return True
        self._entries = {key: entry for key, entry in self._entries.items() if entry[0] > at}
        return len(self._entries) + count <= self.max_entries
