"""Test support: real nats-server, real databases (SQLite and PostgreSQL), services run in-process."""
