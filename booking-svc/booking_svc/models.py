"""Every table of this service, imported in one place for alembic."""
