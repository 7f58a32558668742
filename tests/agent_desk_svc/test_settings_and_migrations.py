"""Settings come from DESK_ or the shared CALLCENTRE_ variables; the alembic migration matches the models."""

from __future__ import annotations

import asyncio

import pytest
from alembic import command

from agent_desk_svc.settings import DEV_JWT_SECRET, Settings
from services.migrations import alembic_config, upgrade


def test_settings_fall_back_to_the_shared_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = Settings()
    assert defaults.jwt_secret.get_secret_value() == DEV_JWT_SECRET and defaults.token_ttl_seconds == 8 * 3600
    assert defaults.admin_user is None and defaults.port == 8103
    monkeypatch.setenv("CALLCENTRE_ADMIN_USER", "shared-admin")
    monkeypatch.setenv("CALLCENTRE_ADMIN_PASSWORD", "shared-password-123")
    monkeypatch.setenv("CALLCENTRE_JWT_SECRET", "shared-jwt-secret-0123456789abcdef")
    shared = Settings()
    assert shared.admin_user == "shared-admin"
    assert shared.admin_password is not None and shared.admin_password.get_secret_value() == "shared-password-123"
    assert shared.jwt_secret.get_secret_value() == "shared-jwt-secret-0123456789abcdef"
    assert "shared-password-123" not in repr(shared)  # secrets stay out of reprs and logs
    monkeypatch.setenv("DESK_ADMIN_USER", "desk-admin")
    assert Settings().admin_user == "desk-admin"


async def test_the_migration_matches_the_models(database_url: str) -> None:
    await asyncio.to_thread(upgrade, "agent_desk_svc", database_url)
    # Raises when the models hold anything the migrations do not create.
    await asyncio.to_thread(command.check, alembic_config("agent_desk_svc", database_url))
