from services.migrations import run_env

from agent_desk_svc import models  # noqa: F401 - every table registers on Base.metadata
from agent_desk_svc.db import Base

run_env(Base.metadata)
