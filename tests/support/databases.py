"""Fresh databases for tests: a SQLite file, or a new PostgreSQL database on the machine's server."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

PG_ADMIN_DSN = os.environ.get("TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_ASYNC_BASE = os.environ.get("TEST_PG_ASYNC_BASE", "postgresql+asyncpg://postgres@127.0.0.1:5432")

DIALECTS = ("sqlite", "postgresql")


def _pg_admin():
    import psycopg2

    conn = psycopg2.connect(PG_ADMIN_DSN)
    conn.autocommit = True
    return conn


def create_database(kind: str, name: str, tmp_dir: Path) -> str:
    """Returns an async SQLAlchemy URL of a new, empty database."""
    if kind == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_dir / (name + '.db')}"
    if kind == "postgresql":
        dbname = f"cctest_{name}_{uuid.uuid4().hex[:10]}".lower()
        conn = _pg_admin()
        try:
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{dbname}"')
        finally:
            conn.close()
        return f"{PG_ASYNC_BASE}/{dbname}"
    raise ValueError(kind)


def drop_database(url: str) -> None:
    if not url.startswith("postgresql"):
        return
    dbname = url.rsplit("/", 1)[1]
    conn = _pg_admin()
    try:
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
    finally:
        conn.close()
