from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from agent_desk_svc.fields import TimeOut


class AuditItem(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    actor: str
    role: str
    on_behalf_of: str | None
    action: str
    target_kind: str
    target_id: str | None
    nhs_number: str | None
    query_kind: str | None
    result_count: int | None
    detail: str | None
    at: TimeOut
    service: str
