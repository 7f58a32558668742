"""`python -m agent_desk_svc purge [--dry-run]`: apply the retention periods once (run it daily, e.g. from a
Kubernetes CronJob) and print what was removed, or with --dry-run what would be, as one JSON line."""

from __future__ import annotations

import asyncio
import json

from agent_desk_svc.retention.service import PurgeCounts, purge
from agent_desk_svc.settings import Settings
from services.db import Database
from services.logging import configure_logging
from services.timeutil import utcnow


def purge_command(settings: Settings, args: list[str]) -> None:
    unknown = [a for a in args if a != "--dry-run"]
    if unknown:
        raise SystemExit(f"usage: python -m agent_desk_svc purge [--dry-run] (not understood: {' '.join(unknown)})")
    dry_run = "--dry-run" in args
    configure_logging(settings.service_name, settings.log_level, settings.log_json)
    counts = asyncio.run(_purge(settings, dry_run))
    print(json.dumps({"purge": "dry_run" if dry_run else "done", **counts.as_dict()}), flush=True)


async def _purge(settings: Settings, dry_run: bool) -> PurgeCounts:
    db = Database(settings.database_url, producer=settings.service_name, pool_size=1,
                  random_page_cost=settings.database_random_page_cost)
    try:
        transaction = db.read_transaction() if dry_run else db.write_transaction()
        async with transaction as session:  # the purge's one transaction: all of it, or nothing
            return await purge(session, settings, utcnow(), dry_run=dry_run)
    finally:
        await db.dispose()
