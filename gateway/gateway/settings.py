"""Gateway settings: env prefix `GATEWAY_`, falling back to the shared `CALLCENTRE_` prefix (so one
`CALLCENTRE_IDENTITY_SECRET` / `CALLCENTRE_JWT_SECRET` serves the gateway and the services).

The gateway has no database and no NATS connection; it reuses ServiceSettings for the prefix fallback and the
shared fields (host, port, workers, identity_secret, logging) and ignores the rest."""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from services.settings import ServiceSettings

DEV_JWT_SECRET = "dev-jwt-secret-change-me-0123456789abcdef"  # local stack only; production sets a real one


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore")

    service_name: str = "gateway"
    port: int = 8000

    # Upstreams, named as /readyz and the metrics name them.
    booking_url: str = "http://127.0.0.1:8102"
    registry_url: str = "http://127.0.0.1:8101"
    desk_url: str = "http://127.0.0.1:8103"

    # Staff tokens. Locally HS256 with the secret agent-desk-svc signs with; in production RS256/ES256 from an
    # identity provider, its keys found through `jwks_url` or OIDC discovery on `oidc_issuer`.
    jwt_secret: str = DEV_JWT_SECRET
    jwt_algorithms: list[str] = ["HS256"]
    jwt_audience: str = "callcentre-staff"
    jwks_url: str | None = None
    oidc_issuer: str | None = None
    jwt_role_claim: str = "role"
    jwt_leeway_seconds: int = 5

    # Practice API keys, verified by the registry. Revocation must bite within 30 s, hence the cap.
    api_key_cache_seconds: float = Field(10.0, ge=0, le=15)
    api_key_negative_cache_seconds: float = Field(5.0, ge=0, le=15)

    # Staff accounts, checked with agent-desk-svc: a disabled or demoted account's token stops working within this.
    staff_status_cache_seconds: float = Field(10.0, ge=0, le=15)

    # Rate limits (`limits` notation). Per principal when authenticated; per client IP on public API routes
    # (POST /api/v1/auth/token). memory:// is per process: use redis://host:6379 when running several replicas.
    rate_limit_principal: str = "1200/minute"
    rate_limit_anonymous: str = "120/minute"
    rate_limit_storage_url: str = "memory://"

    max_body_bytes: int = 10 * 1024 * 1024
    max_page_size: int = 500

    # Upstream calls. The read timeout is per route class: default, bulk uploads, and none for SSE.
    connect_timeout_seconds: float = 2.0
    upstream_timeout_seconds: float = 30.0
    bulk_timeout_seconds: float = 120.0
    readyz_timeout_seconds: float = 2.0
    upstream_pool_size: int = 256  # connections per upstream (SSE streams have their own, unbounded pool)
    pool_timeout_seconds: float = 5.0  # waiting for a free connection plus connecting; then 503
    upstream_keepalive_seconds: float = 4.0  # below uvicorn's 5 s, so the upstream never closes one first
    breaker_failure_threshold: int = 5
    breaker_reset_seconds: float = 10.0

    openapi_cache_seconds: float = 300.0
    openapi_retry_seconds: float = 3.0  # how soon a service whose spec could not be fetched is asked again
    identity_ttl_seconds: int = 120
    # Behind a trusted load balancer, take the client address from its X-Forwarded-For; otherwise the peer.
    trust_forwarded_for: bool = False
    access_log: bool = True

    @field_validator("booking_url", "registry_url", "desk_url", "jwks_url", "oidc_issuer")
    @classmethod
    def _no_trailing_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else value

    def upstream_urls(self) -> dict[str, str]:
        return {"booking": self.booking_url, "registry": self.registry_url, "desk": self.desk_url}
