"""The declarative base of this service's own database (the kernel adds its outbox and inbox tables)."""

from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

from services.db import NAMING_CONVENTION


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
