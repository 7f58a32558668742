from services.migrations import run_env

from booking_svc import models  # noqa: F401 - every table registers on Base.metadata
from booking_svc.db import Base

run_env(Base.metadata)
