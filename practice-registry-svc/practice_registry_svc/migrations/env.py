import services.inbox  # noqa: F401 - registers the kernel's inbox table on kernel_metadata
import services.outbox  # noqa: F401 - registers the kernel's outbox table on kernel_metadata
from services.migrations import run_env

from practice_registry_svc import models  # noqa: F401 - every table registers on Base.metadata
from practice_registry_svc.db import Base

run_env(Base.metadata)
