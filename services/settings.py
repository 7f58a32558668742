"""Typed settings. Each service subclasses `ServiceSettings` with its own env prefix (e.g. `BOOKING_`);
anything not set under that prefix falls back to the shared `CALLCENTRE_` prefix, so one
`CALLCENTRE_NATS_URL` serves every service while `BOOKING_DATABASE_URL` stays per service."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

from services.messaging import STREAM_MAX_AGE_SECONDS

SHARED_PREFIX = "CALLCENTRE_"
DEV_SECRET = "dev-only-change-me-0123456789abcdef"  # local stack only; production sets real secrets


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

    service_name: str = "service"
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    database_url: str = "sqlite+aiosqlite:///./var/service.db"
    # Kept open, no overflow: at the peak, overflow connections were opened and closed per request, and each new
    # connection prepared every statement again.
    database_pool_size: int = 20
    # Test each pooled connection (three round trips) before every use. Off: a connection that died (say,
    # PostgreSQL restarted) fails one request with a 503 and makes the pool replace every older connection.
    database_pool_pre_ping: bool = False
    # PostgreSQL's planner cost of a random page read (its default, 4, is for spinning disks), set on this service's
    # own sessions. The hot data here (a fortnight of slots, the registry copy) is small and cached, and at 4 the
    # planner joined a booking's one slot to its practice, slot type and clinician by reading those tables whole:
    # 81 -> 40 us per statement in a flow rush at 1.1, the value usually advised for SSDs.
    database_random_page_cost: float = Field(1.1, gt=0)
    nats_url: str = "nats://127.0.0.1:4222"
    # JetStream replicas per stream: 1 locally, 3 on a 3-node cluster so losing a server loses no events.
    nats_stream_replicas: int = 1
    # Signs the identity the gateway passes to services; services verify it.
    identity_secret: str = DEV_SECRET
    log_level: str = "INFO"
    log_json: bool = True
    outbox_batch_size: int = 200
    outbox_poll_seconds: float = 0.5
    # After a small batch, the relay and the consumers wait this long so the next batch carries more: at the
    # peak, many small batches cost more CPU per event than the few milliseconds of delay they save.
    event_linger_seconds: float = 0.02
    # How long a consumer's pull waits for its batch to fill. JetStream holds a pull open until the batch is full
    # or this expires, so it bounds how long an event can sit fetched but unapplied when traffic is light. At
    # 1 s, the desk's fetches in the 8am rush took up to 1.2 s and handed over events up to 4.7 s old.
    event_fetch_wait_seconds: float = Field(0.1, gt=0, le=5)
    # The most events a consumer fetches and applies in one transaction. When its process is busy every await
    # waits its turn on the event loop, so a batch costs about the same time whatever its size: at 100, the
    # desk applied about 100 booking events a second in a saturated rush and fell seconds behind.
    event_batch_size: int = Field(500, gt=0, le=1000)  # at most the consumer's max_ack_pending
    # Published outbox rows (event payloads, NHS numbers among them) and processed inbox rows are deleted after
    # this many days, checked every prune interval. Longer than JetStream keeps a message, so a redelivered event
    # is still recognised.
    event_log_retention_days: int = Field(30, gt=STREAM_MAX_AGE_SECONDS // 86400)
    event_log_prune_interval_seconds: float = Field(3600.0, gt=0)
    shutdown_flush_seconds: float = 5.0

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        shared = EnvSettingsSource(settings_cls, env_prefix=SHARED_PREFIX)
        return init_settings, env_settings, shared, dotenv_settings, file_secret_settings
