from pydantic_settings import SettingsConfigDict

from services.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="REGISTRY_", extra="ignore")

    service_name: str = "practice-registry-svc"
    port: int = 8101
    database_url: str = "sqlite+aiosqlite:///./var/practice-registry-svc.db"
    # One PUT of a practice's patients: 50,000 rows is a very large practice and about 5 MB of JSON.
    patients_upload_max_rows: int = 50_000
    # A demographic search matching more than this asks the agent for more details instead.
    lookup_max_results: int = 50
