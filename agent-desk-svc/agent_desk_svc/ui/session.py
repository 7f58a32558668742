"""The browser's sign-in session: the staff token in an HttpOnly cookie the gateway accepts like a bearer token,
and a double-submit CSRF token that scripts (and the sign-in form) send back."""

from __future__ import annotations

import hmac
import secrets

from fastapi import Request, Response

from services.auth import IDENTITY_HEADER, STAFF_ROLES, IdentityVerifier, Principal
from services.errors import DomainError

SESSION_COOKIE = "cc_session"
CSRF_COOKIE = "cc_csrf"
CSRF_FIELD = "csrf_token"  # the sign-in and sign-out forms' hidden field
CSRF_HEADER = "x-csrf-token"
_TOKEN_BYTES = 32
_MAX_TOKEN_LENGTH = 128


def new_csrf_token() -> str:
    return secrets.token_urlsafe(_TOKEN_BYTES)


def csrf_matches(cookie_value: str | None, submitted: str | None) -> bool:
    """True when a non-empty submitted token equals the cookie's. A cross-site page can make the browser send
    the cookie but cannot read it to copy it into the form or header."""
    if not cookie_value or not submitted:
        return False
    if len(cookie_value) > _MAX_TOKEN_LENGTH or len(submitted) > _MAX_TOKEN_LENGTH:
        return False
    return hmac.compare_digest(cookie_value.encode(), submitted.encode())


def usable_csrf_cookie(value: str | None) -> str | None:
    """The cookie's token when it looks like one we issue (so a page can reuse it), else None."""
    if value and 16 <= len(value) <= _MAX_TOKEN_LENGTH and all(c.isalnum() or c in "-_" for c in value):
        return value
    return None


def is_https(request: Request) -> bool:
    """Behind the gateway the browser's scheme arrives as X-Forwarded-Proto."""
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return (forwarded or request.url.scheme) == "https"


def set_session(response: Response, token: str, *, max_age: int, secure: bool) -> None:
    response.set_cookie(SESSION_COOKIE, token, max_age=max_age, path="/", httponly=True, samesite="strict",
                        secure=secure)


def set_csrf(response: Response, token: str, *, secure: bool) -> None:
    # Readable by scripts on purpose (they copy it into X-CSRF-Token); it grants nothing on its own.
    response.set_cookie(CSRF_COOKIE, token, path="/", httponly=False, samesite="strict", secure=secure)


def end_session(response: Response, *, secure: bool) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict", secure=secure)
    response.delete_cookie(CSRF_COOKIE, path="/", samesite="strict", secure=secure)


def signed_in_staff(request: Request) -> Principal | None:
    """Who the gateway says is calling (it turns a valid `cc_session` cookie into the identity header), when that
    is a member of staff. Pages are public routes at the gateway, so the header may be absent."""
    token = request.headers.get(IDENTITY_HEADER)
    if not token:
        return None
    verifier: IdentityVerifier = request.app.state.identity_verifier
    try:
        principal = verifier.verify(token)
    except DomainError:
        return None
    return principal if principal.role in STAFF_ROLES else None
