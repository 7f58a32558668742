from booking_svc import models  # noqa: F401 - every table registers on Base.metadata
from booking_svc.db import Base

import services.inbox  # noqa: F401 - the kernel's inbox and outbox tables register on kernel_metadata on import
import services.outbox  # noqa: F401
from services.migrations import run_env

run_env(Base.metadata)
