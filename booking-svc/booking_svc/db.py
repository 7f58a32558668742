"""The declarative base of this service's own database (the kernel adds its outbox and inbox tables)."""

from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.sql import Insert
from sqlalchemy.sql.schema import Table

from services.db import NAMING_CONVENTION, dialect_insert


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def dialect_name(session: AsyncSession) -> str:
    return session.bind.dialect.name if session.bind is not None else "sqlite"


def insert_ignoring_duplicates(session: AsyncSession, table: Table) -> Insert:
    """INSERT ... ON CONFLICT DO NOTHING in the session's dialect (SQLite and PostgreSQL both have it)."""
    return dialect_insert(dialect_name(session))(table).on_conflict_do_nothing()


def chunks(values: list, size: int = 5000):
    """Bound lists for IN (...): both drivers cap the parameters of one statement."""
    for i in range(0, len(values), size):
        yield values[i:i + size]
