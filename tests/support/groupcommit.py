"""Watching a service's group commits (services.groupcommit) in tests."""

from __future__ import annotations

from typing import Any

from services.groupcommit import GroupCommit
from services.metrics import GROUP_COMMIT_FALLBACKS


def batch_sizes(commit: GroupCommit) -> list[int]:
    """The size of every batch `commit` runs from now on (none on SQLite, which runs each request on its own)."""
    sizes: list[int] = []
    run_batch = commit.run_batch

    async def spied(batch: Any, items: list) -> list:
        sizes.append(len(items))
        return await run_batch(batch, items)

    commit.run_batch = spied
    return sizes


def fallbacks(name: str) -> float:
    """How many of `name`'s batches have rolled back and run request by request (which would hide a batch's
    mistakes behind the one-request path's right answers)."""
    return GROUP_COMMIT_FALLBACKS.labels(name)._value.get()
