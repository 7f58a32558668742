"""Each service of an end-to-end stack on its own fresh database of one dialect."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.databases import create_database, drop_database

DATABASE_ENV = {"practice-registry-svc": "REGISTRY_DATABASE_URL", "booking-svc": "BOOKING_DATABASE_URL",
                "agent-desk-svc": "DESK_DATABASE_URL"}


@contextmanager
def stack_databases(dialect: str, tmp_dir: Path) -> Iterator[dict[str, str]]:
    """The environment that puts every service on a new `dialect` database; dropped afterwards."""
    if dialect == "sqlite":
        yield {}  # `callcentre up` makes SQLite files under its data dir
        return
    urls = {env: create_database(dialect, name.split("-")[0], tmp_dir) for name, env in DATABASE_ENV.items()}
    try:
        yield urls
    finally:
        for url in urls.values():
            drop_database(url)
