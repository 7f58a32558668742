from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from services.settings import ServiceSettings

DEV_JWT_SECRET = "dev-jwt-secret-change-me-0123456789abcdef"  # local stack only; production sets CALLCENTRE_JWT_SECRET


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DESK_", extra="ignore")

    service_name: str = "agent-desk-svc"
    port: int = 8103
    database_url: str = "sqlite+aiosqlite:///./var/agent-desk-svc.db"

    # First start creates this admin when set (DESK_ADMIN_USER or the shared CALLCENTRE_ADMIN_USER).
    admin_user: str | None = None
    admin_password: SecretStr | None = None

    # Staff tokens: the gateway verifies them with the same secret.
    jwt_secret: SecretStr = SecretStr(DEV_JWT_SECRET)
    token_ttl_seconds: int = 8 * 3600  # one shift

    # Argon2id cost (argon2-cffi's defaults); tests lower them to stay quick.
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65536
    argon2_parallelism: int = 4

    # Sign-in throttling per username: this many failures inside the window lock the name for lock seconds.
    sign_in_max_failures: int = 10
    sign_in_failure_window_seconds: int = 15 * 60
    sign_in_lock_seconds: int = 5 * 60

    # Retention in days, applied by `python -m agent_desk_svc purge` (see retention/service.py for the reasons).
    # (The event log's, EVENT_LOG_RETENTION_DAYS, is the kernel's: every service prunes its own.)
    audit_retention_days: int = Field(2922, ge=1)  # 8 years
    call_notes_retention_days: int = Field(730, ge=1)  # 2 years

    # Live stream (server-sent events).
    live_client_queue_size: int = 100
    live_dashboard_poll_seconds: float = 5.0
