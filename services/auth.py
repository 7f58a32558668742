"""Who is calling. The gateway authenticates every request (staff token, session cookie or practice API key)
and passes the result to services as a short-lived HS256 token in `X-Callcentre-Identity`, signed with a secret
only the gateway and services hold. The gateway strips any such header a client sends, and services refuse a
request whose identity does not verify, so a client cannot forge who it is."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated, Literal

import jwt
from fastapi import Depends, Request

from services.errors import Forbidden, Unauthorized

IDENTITY_HEADER = "x-callcentre-identity"
IDENTITY_AUDIENCE = "callcentre-internal"
STAFF_AUDIENCE = "callcentre-staff"

Role = Literal["agent", "supervisor", "admin", "practice", "service"]
STAFF_ROLES: frozenset[str] = frozenset({"agent", "supervisor", "admin"})


@dataclass(frozen=True, slots=True)
class Principal:
    subject: str  # username, or the API key id for a practice
    role: str
    ods_code: str | None = None  # set for a practice key: the one practice it may act for

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES

    @property
    def is_practice(self) -> bool:
        return self.role == "practice"

    def can_act_for(self, ods_code: str) -> bool:
        """Staff act for any practice; a practice key only for its own."""
        return self.is_staff or self.role == "service" or (self.is_practice and self.ods_code == ods_code.upper())


def sign_identity(principal: Principal, secret: str, ttl_seconds: int = 120) -> str:
    now = int(time.time())
    claims = {"sub": principal.subject, "role": principal.role, "aud": IDENTITY_AUDIENCE, "iat": now,
              "exp": now + ttl_seconds}
    if principal.ods_code:
        claims["ods"] = principal.ods_code
    return jwt.encode(claims, secret, algorithm="HS256")


class IdentityVerifier:
    """Verifies identity tokens, remembering recent ones: the gateway reuses a token for many requests."""

    def __init__(self, secret: str, cache_size: int = 4096) -> None:
        self.secret = secret
        self._cache: dict[str, tuple[Principal, int]] = {}
        self._cache_size = cache_size

    def verify(self, token: str) -> Principal:
        now = int(time.time())
        hit = self._cache.get(token)
        if hit and hit[1] > now:
            return hit[0]
        try:
            claims = jwt.decode(token, self.secret, algorithms=["HS256"], audience=IDENTITY_AUDIENCE,
                                options={"require": ["exp", "sub", "role"]})
        except jwt.PyJWTError as exc:
            raise Unauthorized("The caller's identity could not be verified.", code="invalid_identity") from exc
        principal = Principal(subject=str(claims["sub"]), role=str(claims["role"]), ods_code=claims.get("ods"))
        if len(self._cache) >= self._cache_size:
            self._cache.clear()
        self._cache[token] = (principal, int(claims["exp"]))
        return principal


def issue_staff_token(username: str, role: str, secret: str, ttl_seconds: int) -> str:
    now = int(time.time())
    return jwt.encode({"sub": username, "role": role, "aud": STAFF_AUDIENCE, "iat": now, "exp": now + ttl_seconds},
                      secret, algorithm="HS256")


async def get_principal(request: Request) -> Principal:
    # async (like every cheap dependency): a plain `def` would cost a thread-pool hop per request.
    token = request.headers.get(IDENTITY_HEADER)
    if not token:
        raise Unauthorized("No credentials were presented.", code="unauthenticated")
    verifier: IdentityVerifier = request.app.state.identity_verifier
    return verifier.verify(token)


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def require_roles(*roles: str):
    """A dependency admitting only the given roles."""
    allowed = frozenset(roles)

    async def dependency(principal: CurrentPrincipal) -> Principal:
        if principal.role not in allowed:
            raise Forbidden(f"This needs one of the roles: {', '.join(sorted(allowed))}.", code="forbidden_role")
        return principal

    return Depends(dependency)


def ensure_acts_for(principal: Principal, ods_code: str) -> None:
    if not principal.can_act_for(ods_code):
        raise Forbidden("This API key belongs to another practice.", code="other_practice")


Staff = Annotated[Principal, require_roles("agent", "supervisor", "admin")]
Admin = Annotated[Principal, require_roles("admin")]
StaffOrPractice = Annotated[Principal, require_roles("agent", "supervisor", "admin", "practice")]
AdminOrPractice = Annotated[Principal, require_roles("admin", "practice")]
