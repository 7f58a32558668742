from pydantic_settings import SettingsConfigDict

from services.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="REGISTRY_", extra="ignore")

    service_name: str = "practice-registry-svc"
    port: int = 8101
    database_url: str = "sqlite+aiosqlite:///./var/practice-registry-svc.db"
