from pydantic_settings import SettingsConfigDict

from services.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="BOOKING_", extra="ignore")

    service_name: str = "booking-svc"
    port: int = 8102
    database_url: str = "sqlite+aiosqlite:///./var/booking-svc.db"
