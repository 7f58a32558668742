from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints

from agent_desk_svc.agents.state import AgentState
from agent_desk_svc.fields import TimeOut

Role = Literal["agent", "supervisor", "admin"]
Username = Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=64,
                                            pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]*$"), AfterValidator(str.lower)]
# Long enough to resist guessing; capped so a huge body cannot make the hash expensive.
Password = Annotated[str, StringConstraints(min_length=10, max_length=256)]
DisplayName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class TokenRequest(BaseModel):
    # Loose on purpose: a malformed name must get the same 401 as a wrong password, not a 422 that says why.
    username: Annotated[str, StringConstraints(max_length=256)]
    password: Annotated[str, StringConstraints(max_length=1024)]


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
    role: Role


class AgentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: Username
    password: Password
    display_name: DisplayName
    role: Role = "agent"


class AgentPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    display_name: DisplayName | None = None
    active: bool | None = None
    password: Password | None = None
    role: Role | None = None


class StateChange(BaseModel):
    state: AgentState


class AgentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    username: str
    display_name: str
    role: Role
    active: bool
    state: AgentState
    state_since: TimeOut
    created_at: TimeOut
    last_sign_in_at: TimeOut | None = None



class StaffCheck(BaseModel):
    """The gateway asks whether the account behind a staff token may still act with the token's role."""

    username: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    role: Annotated[str, StringConstraints(max_length=20)]


class StaffStatus(BaseModel):
    username: str
    role: Role
    active: bool
