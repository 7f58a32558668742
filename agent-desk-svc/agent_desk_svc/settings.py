from pydantic_settings import SettingsConfigDict

from services.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DESK_", extra="ignore")

    service_name: str = "agent-desk-svc"
    port: int = 8103
    database_url: str = "sqlite+aiosqlite:///./var/agent-desk-svc.db"
