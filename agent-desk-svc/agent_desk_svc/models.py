"""Every table of this service, imported in one place for alembic."""

from agent_desk_svc.agents.models import Agent, SignInFailure  # noqa: F401
from agent_desk_svc.audit.models import AuditRecord  # noqa: F401
from agent_desk_svc.callbacks.models import CallbackAttempt, CallbackTask  # noqa: F401
from agent_desk_svc.calls.models import Call  # noqa: F401
from agent_desk_svc.dashboard.models import PracticeDayBookings, PracticeDayFreeSlots  # noqa: F401
