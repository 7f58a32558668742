"""Alembic per service. Each service keeps its migrations in `<package>/migrations/`; its env.py calls
`run_env(metadata)`. `upgrade(package, url)` is what the local stack and the Kubernetes Job run."""

from __future__ import annotations

import asyncio
import importlib
from pathlib import Path

from alembic import command, context, op
from alembic.config import Config
from sqlalchemy import MetaData, pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from services.db import kernel_metadata
from services import inbox as _inbox, outbox as _outbox  # noqa: F401 - their tables join kernel_metadata


def alembic_config(package: str, database_url: str) -> Config:
    package_dir = Path(importlib.import_module(package).__file__).parent  # type: ignore[arg-type]
    config = Config()
    config.set_main_option("script_location", str(package_dir / "migrations"))
    config.attributes["database_url"] = database_url
    config.attributes["version_table"] = f"alembic_version_{package}"
    return config


def ensure_sqlite_dir(database_url: str) -> None:
    if database_url.startswith("sqlite") and ":///" in database_url:
        path = database_url.split(":///", 1)[1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)


def upgrade(package: str, database_url: str, revision: str = "head") -> None:
    ensure_sqlite_dir(database_url)
    command.upgrade(alembic_config(package, database_url), revision)


def make_revision(package: str, message: str) -> None:
    """Autogenerate a revision by comparing the models with a scratch SQLite database at head."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/scratch.db"
        upgrade(package, url)
        command.revision(alembic_config(package, url), message=message, autogenerate=True)


def build_index_concurrently(name: str, table: str, columns: list[str], *, where: str | None = None) -> None:
    """In a migration on PostgreSQL, inside `op.get_context().autocommit_block()`: build an index without blocking
    writes to the table while it is built. A concurrent build that failed (a lost connection, the Job's deadline)
    leaves its index behind, invalid and never used: it is dropped and built again, not taken for done."""
    invalid = op.get_bind().execute(text(
        "SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE NOT i.indisvalid AND c.relname = :name"),
        {"name": name}).first()
    if invalid is not None:
        op.drop_index(name, table_name=table, postgresql_concurrently=True)
    op.create_index(name, table, columns, postgresql_where=text(where) if where else None,
                    postgresql_concurrently=True, if_not_exists=True)


def run_env(service_metadata: MetaData) -> None:
    """The body of every service's migrations/env.py (online mode, async engine)."""
    config = context.config
    url = config.attributes.get("database_url") or config.get_main_option("sqlalchemy.url")
    version_table = config.attributes.get("version_table", "alembic_version")
    target = [service_metadata, kernel_metadata]

    def do_run(connection: Connection) -> None:
        context.configure(connection=connection, target_metadata=target, version_table=version_table,
                          render_as_batch=connection.dialect.name == "sqlite", compare_type=True)
        with context.begin_transaction():
            context.run_migrations()

    async def run_async() -> None:
        engine = create_async_engine(url, poolclass=pool.NullPool)
        async with engine.connect() as connection:
            await connection.run_sync(do_run)
            await connection.commit()
        await engine.dispose()

    connection = config.attributes.get("connection")
    if connection is not None:
        do_run(connection)
    else:
        asyncio.run(run_async())
