from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="BOOKING_", extra="ignore")

    service_name: str = "booking-svc"
    port: int = 8102
    database_url: str = "sqlite+aiosqlite:///./var/booking-svc.db"
    # How long a hold keeps a slot for the agent who took it; an expired hold counts as absent everywhere.
    hold_seconds: int = 120
    # The widest window one rota PUT may replace.
    rota_max_weeks: int = 12
    # Default page size of slot searches (a client may ask for up to 500).
    slot_search_default_limit: int = 50
    # The most bookings (and, apart, the most holds) committed together in one transaction (PostgreSQL;
    # services.groupcommit).
    booking_batch_size: int = Field(100, ge=1, le=1000)
    # How long a replica may search with practices' and slot types' rules, and the counts of slots under embargo,
    # read earlier (booking_svc.registry.repository.PracticeRules, booking_svc.slots.repository.EmbargoedCounts);
    # the replica that applies a registry change, or replaces a rota, forgets its copy at once.
    search_rules_seconds: float = Field(1.0, ge=0, le=60)
