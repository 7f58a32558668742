"""Staff accounts, sign-in and agent states."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from agent_desk_svc.agents import repository, throttle
from agent_desk_svc.agents.models import Agent, SignInFailure
from agent_desk_svc.agents.passwords import Passwords
from agent_desk_svc.agents.schemas import AgentCreate, AgentPatch, TokenOut
from agent_desk_svc.agents.state import TransitionRefused, chosen_state
from agent_desk_svc.calls import repository as calls_repository
from agent_desk_svc.settings import Settings
from services.db import upsert
from services.auth import Principal, issue_staff_token
from services.contracts.desk import AgentStateChanged
from services.db import Database
from services.errors import Conflict, DomainError, Forbidden, NotFound, Unauthorized
from services.logging import get_logger
from services.outbox import record_event
from services.timeutil import as_utc, utcnow

log = get_logger(__name__)

MANAGERS = frozenset({"supervisor", "admin"})
_USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._@-]{1,63}$")


class SignInLocked(DomainError):  # noqa: N818 - named like the kernel's errors
    status, code, title = 429, "sign_in_locked", "Too many failed sign-ins"


def throttle_policy(settings: Settings) -> throttle.ThrottlePolicy:
    return throttle.ThrottlePolicy(max_failures=settings.sign_in_max_failures,
                                   window=timedelta(seconds=settings.sign_in_failure_window_seconds),
                                   lock=timedelta(seconds=settings.sign_in_lock_seconds))


def _failure_record(row: SignInFailure | None) -> throttle.FailureRecord | None:
    if row is None:
        return None
    return throttle.FailureRecord(failures=row.failures, first_failure_at=as_utc(row.first_failure_at),
                                  locked_until=as_utc(row.locked_until) if row.locked_until else None)


# ---------------------------------------------------------------------------------------------- sign-in

async def sign_in(db: Database, passwords: Passwords, settings: Settings, username: str, password: str) -> TokenOut:
    """Check a username and password and issue a staff token.

    Runs its own short transactions instead of the request's session: a failed attempt answers 401 (which rolls
    the request's session back) yet must still count towards the lock, and the slow hash check should not hold
    SQLite's write lock."""
    name = username.strip().lower()[:64]
    async with db.read_transaction() as session:
        wait = throttle.locked_for(_failure_record(await repository.sign_in_failure(session, name)), utcnow())
        if wait > 0:
            raise SignInLocked("Too many failed sign-ins for this username; try again later.",
                               headers={"Retry-After": str(int(wait) + 1)}, retry_after=int(wait) + 1)
        agent = await repository.get(session, name)
    matches = await passwords.verify(agent.password_hash if agent else None, password)
    if not matches or agent is None or not agent.active:
        await _count_failure(db, settings, name)
        # Log the name only when it is a real account: people type passwords into the username box.
        log.info("auth.sign_in_failed", username=name if agent else None, known=agent is not None)
        raise Unauthorized("The username or password is wrong, or the account is disabled.",
                           code="invalid_credentials")
    new_hash = await passwords.hash(password) if passwords.needs_rehash(agent.password_hash) else None
    async with db.write_transaction() as session:
        failure = await repository.sign_in_failure(session, name)
        if failure is not None:
            await session.delete(failure)
        fresh = await repository.get(session, name)
        if fresh is None or not fresh.active:  # disabled between the check and now
            raise Unauthorized("The username or password is wrong, or the account is disabled.",
                               code="invalid_credentials")
        fresh.last_sign_in_at = utcnow()
        if new_hash is not None:
            fresh.password_hash = new_hash
        role = fresh.role
    log.info("auth.signed_in", username=name, role=role)
    token = issue_staff_token(name, role, settings.jwt_secret.get_secret_value(), settings.token_ttl_seconds)
    return TokenOut(access_token=token, expires_in=settings.token_ttl_seconds, role=role)  # type: ignore[arg-type]


async def _count_failure(db: Database, settings: Settings, name: str) -> None:
    async with db.write_transaction() as session:
        now = utcnow()
        current = await repository.sign_in_failure(session, name, for_update=True)
        record = throttle.after_failure(throttle_policy(settings), _failure_record(current), now)
        values = {"username": name, "failures": record.failures, "first_failure_at": record.first_failure_at,
                  "locked_until": record.locked_until}
        await upsert(session, SignInFailure.__table__, values, key=["username"],
                     update=lambda _excluded: {k: v for k, v in values.items() if k != "username"})
    if record.locked_until is not None and record.failures == settings.sign_in_max_failures:
        log.warning("auth.sign_in_locked", known_failures=record.failures)


# ---------------------------------------------------------------------------------------------- the first admin

async def ensure_admin(db: Database, passwords: Passwords, username: str, password: str) -> bool:
    """Create the configured admin unless that user exists. Safe when several replicas start at once: the
    username is the primary key, so a second insert fails and is ignored. Returns True when it created one."""
    name = username.strip().lower()
    if not _USERNAME_RE.match(name):
        log.error("bootstrap.admin_username_invalid")
        return False
    if len(password) < 10:
        log.warning("bootstrap.admin_password_short")
    async with db.read_transaction() as session:
        if await repository.get(session, name) is not None:
            return False
    password_hash = await passwords.hash(password)
    try:
        async with db.write_transaction() as session:
            if await repository.get(session, name) is not None:
                return False
            now = utcnow()
            session.add(Agent(username=name, password_hash=password_hash, display_name="Administrator", role="admin",
                              active=True, state="offline", state_since=now, created_at=now))
    except IntegrityError:
        return False
    log.info("bootstrap.admin_created", username=name)
    return True


# ---------------------------------------------------------------------------------------------- accounts

def _may_manage(principal: Principal, role: str) -> None:
    """Admins manage every account; supervisors manage agents only."""
    if principal.role == "admin":
        return
    if principal.role == "supervisor" and role == "agent":
        return
    raise Forbidden("Supervisors manage agent accounts only.", code="role_not_allowed")


async def create_agent(session: AsyncSession, passwords: Passwords, principal: Principal, body: AgentCreate) -> Agent:
    _may_manage(principal, body.role)
    password_hash = await passwords.hash(body.password)  # before the first query: no lock held while hashing
    if await repository.get(session, body.username) is not None:
        raise Conflict(f"The username {body.username} is taken.", code="agent_exists")
    now = utcnow()
    agent = Agent(username=body.username, password_hash=password_hash, display_name=body.display_name,
                  role=body.role, active=True, state="offline", state_since=now, created_at=now)
    session.add(agent)
    try:
        await session.flush()
    except IntegrityError as exc:  # created concurrently by someone else
        raise Conflict(f"The username {body.username} is taken.", code="agent_exists") from exc
    log.info("agent.created", username=agent.username, role=agent.role, by=principal.subject)
    return agent


async def get_agent(session: AsyncSession, username: str) -> Agent:
    agent = await repository.get(session, username.lower())
    if agent is None:
        raise NotFound(f"No agent {username}.", code="agent_not_found")
    return agent


async def list_agents(session: AsyncSession, *, after: str | None, limit: int, state: str | None,
                      role: str | None, active: bool | None) -> Sequence[Agent]:
    return await repository.listing(session, after=after, limit=limit, state=state, role=role, active=active)


async def update_agent(session: AsyncSession, passwords: Passwords, principal: Principal, username: str,
                       patch: AgentPatch) -> Agent:
    if patch.role is not None and principal.role != "admin":
        raise Forbidden("Only an admin changes roles.", code="role_not_allowed")
    password_hash = await passwords.hash(patch.password) if patch.password is not None else None
    agent = await repository.get(session, username.lower(), for_update=True)
    if agent is None:
        raise NotFound(f"No agent {username}.", code="agent_not_found")
    _may_manage(principal, agent.role)
    losing_admin = agent.role == "admin" and agent.active and (
        patch.active is False or (patch.role is not None and patch.role != "admin"))
    if losing_admin and await repository.count_active_admins(session) <= 1:
        raise Conflict("This is the last active admin.", code="last_admin")
    if patch.active is False and agent.active:
        if await calls_repository.open_call_for(session, agent.username) is not None:
            raise Conflict("Close the agent's open call before disabling the account.", code="call_open")
        agent.active = False
        await move_to_state(session, agent, "offline")
    elif patch.active is True:
        agent.active = True
    if patch.display_name is not None:
        agent.display_name = patch.display_name
    if patch.role is not None:
        agent.role = patch.role
    if password_hash is not None:
        agent.password_hash = password_hash
    log.info("agent.updated", username=agent.username, by=principal.subject,
             fields=sorted(k for k, v in patch.model_dump(exclude_unset=True).items() if k != "password"),
             password_reset=password_hash is not None)
    return agent


async def check_staff(session: AsyncSession, username: str, role: str) -> Agent:
    """For the gateway: a token stays good only while its account is active and still has the token's role, so
    disabling or demoting someone takes effect within seconds instead of when their shift-long token expires."""
    agent = await repository.get(session, username.strip().lower()[:64])
    if agent is None:
        raise Unauthorized("No such account.", code="unknown_account")
    if not agent.active:
        raise Unauthorized("The account is disabled.", code="account_disabled")
    if agent.role != role:
        raise Unauthorized("The account's role has changed: sign in again.", code="role_changed")
    return agent


# ---------------------------------------------------------------------------------------------- states

async def change_state(session: AsyncSession, principal: Principal, username: str, target: str) -> Agent:
    username = username.lower()
    if principal.subject != username and principal.role not in MANAGERS:
        raise Forbidden("Agents change their own state only.", code="not_your_state")
    agent = await repository.get(session, username, for_update=True)
    if agent is None:
        raise NotFound(f"No agent {username}.", code="agent_not_found")
    if not agent.active:
        raise Conflict("The account is disabled.", code="agent_inactive")
    open_call = await calls_repository.open_call_for(session, username)
    try:
        new_state = chosen_state(agent.state, target, has_open_call=open_call is not None)
    except TransitionRefused as refused:
        raise Conflict(refused.detail, code=refused.code) from refused
    await move_to_state(session, agent, new_state)
    return agent


async def move_to_state(session: AsyncSession, agent: Agent, new_state: str) -> None:
    """Set a new state, stamping when it began and telling live views."""
    if new_state == agent.state:
        return
    previous, now = agent.state, utcnow()
    agent.state, agent.state_since = new_state, now
    await _announce_state(session, agent.username, previous, new_state, now)


async def move_to_state_of(session: AsyncSession, username: str, previous: str, new_state: str) -> None:
    """`move_to_state` for an agent read as plain columns and locked (`repository.lock_state`): one UPDATE."""
    if new_state == previous:
        return
    now = utcnow()
    await repository.set_state(session, username, new_state, now)
    await _announce_state(session, username, previous, new_state, now)


async def _announce_state(session: AsyncSession, username: str, previous: str, new_state: str, at: datetime) -> None:
    await record_event(session, state_changed(username, previous, new_state, at), subject_key=username)


def state_changed(username: str, previous: str, new_state: str, at: datetime) -> AgentStateChanged:
    return AgentStateChanged(username=username, state=new_state, previous_state=previous, at=at)
