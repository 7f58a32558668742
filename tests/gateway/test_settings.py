"""Gateway settings: its own prefix, the shared fallback, and the cap on the API key cache."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gateway.settings import Settings


def test_prefix_fallback_and_api_key_cache_cap(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CALLCENTRE_JWT_SECRET", "shared-jwt")
    monkeypatch.setenv("CALLCENTRE_IDENTITY_SECRET", "shared-identity")
    monkeypatch.setenv("GATEWAY_IDENTITY_SECRET", "gateway-identity")
    monkeypatch.setenv("GATEWAY_BOOKING_URL", "http://booking:8102/")
    settings = Settings()
    assert settings.jwt_secret == "shared-jwt" and settings.identity_secret == "gateway-identity"
    assert settings.port == 8000 and settings.booking_url == "http://booking:8102"
    assert settings.upstream_urls()["registry"] == "http://127.0.0.1:8101"
    assert settings.api_key_cache_seconds <= 15

    monkeypatch.setenv("GATEWAY_API_KEY_CACHE_SECONDS", "16")  # revocation must bite within 30 s
    with pytest.raises(ValidationError):
        Settings()
